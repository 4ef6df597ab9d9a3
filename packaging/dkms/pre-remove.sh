# Before removing or upgrading hsa-p2p-dkms (Debian prerm, RPM %preun): removes this version
# of the module, built or not, from DKMS for every kernel (an upgrade registers the new version
# in its own post-install).
NAME=hsa-p2p
VERSION=@VERSION@
if [ -n "$(dkms status -m "$NAME" -v "$VERSION")" ]; then
    dkms remove -m "$NAME" -v "$VERSION" --all
fi
