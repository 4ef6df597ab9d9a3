//! Commands `p2pctl` suggests are printed so that they can be pasted into a POSIX shell: a word
//! with anything but plainly safe characters is single-quoted.

/// `word` as one shell word.
pub fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_the_shell_would_split_or_expand() {
        let cases = [
            ("topologies/small-bar.toml", "topologies/small-bar.toml"),
            ("my specs/a b.toml", "'my specs/a b.toml'"),
            ("it's", r"'it'\''s'"),
            ("$HOME", "'$HOME'"),
            ("", "''"),
        ];
        for (word, quoted) in cases {
            assert_eq!(shell_word(word), quoted, "{word:?}");
        }
    }
}
