//! Byte sizes in specs: an integer number of bytes or a string such as `"64M"` or `"16G"`.

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes, written in specs with an optional binary suffix (K, M, G, T).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// A size string that is not `<digits>[K|M|G|T]`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid size {0:?}: expected bytes or <number>K/M/G/T, e.g. \"64M\"")]
pub struct InvalidSize(String);

impl FromStr for ByteSize {
    type Err = InvalidSize;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidSize(text.to_string());
        let trimmed = text.trim();
        let (digits, shift) = match trimmed.char_indices().last() {
            Some((at, suffix)) if suffix.is_ascii_alphabetic() => {
                let shift = match suffix.to_ascii_uppercase() {
                    'K' => 10,
                    'M' => 20,
                    'G' => 30,
                    'T' => 40,
                    _ => return Err(invalid()),
                };
                (&trimmed[..at], shift)
            }
            _ => (trimmed, 0),
        };
        let number: u64 = digits.parse().map_err(|_| invalid())?;
        number
            .checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(invalid)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
            let unit = 1u64 << shift;
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(bytes) => Ok(ByteSize(bytes)),
            Raw::Text(text) => text.parse().map_err(de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes_and_plain_bytes() {
        assert_eq!("64M".parse(), Ok(ByteSize(64 << 20)));
        assert_eq!("16g".parse(), Ok(ByteSize(16 << 30)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        assert_eq!(ByteSize(32 << 30).to_string(), "32G");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn rejects_garbage_and_overflow() {
        assert!("".parse::<ByteSize>().is_err());
        assert!("12Q".parse::<ByteSize>().is_err());
        assert!("G".parse::<ByteSize>().is_err());
        assert!("99999999999T".parse::<ByteSize>().is_err());
    }
}
