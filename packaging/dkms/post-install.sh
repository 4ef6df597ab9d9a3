# After installing hsa-p2p-dkms (Debian postinst configure, RPM %post): registers the module
# source with DKMS and builds and installs it for every kernel whose build directory is
# installed. A kernel that cannot build a Rust module (no CONFIG_RUST, no Rust metadata,
# another rustc) is explained by the module's pre-build check and skipped: one such kernel must
# not make the installation of the package fail.
NAME=hsa-p2p
VERSION=@VERSION@
if [ -z "$(dkms status -m "$NAME" -v "$VERSION")" ]; then
    dkms add -m "$NAME" -v "$VERSION"
fi
for kdir in /lib/modules/*/build; do
    [ -e "$kdir/Makefile" ] || continue
    kver=$(basename "$(dirname "$kdir")")
    if ! dkms install -m "$NAME" -v "$VERSION" -k "$kver"; then
        echo "hsa-p2p-dkms: hsa_p2p not built for kernel $kver (reason above)" >&2
    fi
done
