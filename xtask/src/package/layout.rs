//! Where the distributions want the files that are not the same everywhere: udev rules and zsh
//! completions. Everything else (`/usr/bin`, `/usr/src`, man pages, bash and fish completions)
//! is at the same path on Debian/Ubuntu and Fedora/RHEL/openSUSE.

/// One distribution family's paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The format's name in messages.
    pub format: &'static str,
    /// udev rules shipped by packages (`pkg-config --variable=udevdir udev` + `/rules.d`).
    pub udev_rules_dir: &'static str,
    /// zsh completion functions of packages other than zsh itself.
    pub zsh_completions_dir: &'static str,
}

/// Debian and Ubuntu: bookworm's udev still lives in `/lib/udev` (lintian expects it there;
/// `/lib` is `/usr/lib` on merged-/usr systems), and Debian's zsh reads packages' completions
/// from `vendor-completions`.
pub const DEBIAN: Layout = Layout {
    format: "deb",
    udev_rules_dir: "/lib/udev/rules.d",
    zsh_completions_dir: "/usr/share/zsh/vendor-completions",
};

/// Fedora, RHEL and openSUSE: `%{_udevrulesdir}` and zsh's `site-functions`.
pub const RPM: Layout = Layout {
    format: "rpm",
    udev_rules_dir: "/usr/lib/udev/rules.d",
    zsh_completions_dir: "/usr/share/zsh/site-functions",
};

/// bash-completion loads a command's completion on demand from this directory on both.
pub const BASH_COMPLETIONS_DIR: &str = "/usr/share/bash-completion/completions";
/// fish's directory for packages' completions on both.
pub const FISH_COMPLETIONS_DIR: &str = "/usr/share/fish/vendor_completions.d";
/// Section 1 man pages (gzip-compressed on both).
pub const MAN1_DIR: &str = "/usr/share/man/man1";
