//! Compression of each Firehose record (`compression`): with aggregation, of each aggregate,
//! so the S3 objects Firehose writes are valid multi-member gzip or zstd files.

use std::cell::RefCell;
use std::io::Write;

thread_local! {
    static ZSTD: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

pub use crate::config::Compression;

impl Compression {
    /// Compresses `data`; `None` passes it through unchanged.
    pub fn apply(self, data: Vec<u8>) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::None => Ok(data),
            Compression::Gzip { level } => {
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 4 + 64),
                    flate2::Compression::new(level),
                );
                e.write_all(&data)?;
                e.finish()
            }
            Compression::Zstd { level } => ZSTD.with(|cell| {
                // A zstd context is costly to make: one per thread, reused (records are
                // often small and many).
                let mut slot = cell.borrow_mut();
                let compressor = match &mut *slot {
                    Some((l, c)) if *l == level => c,
                    other => &mut other.insert((level, zstd::bulk::Compressor::new(level)?)).1,
                };
                compressor.compress(&data)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn members_concatenate_into_one_valid_stream() {
        let a = Compression::Gzip { level: 6 }
            .apply(b"one\n".to_vec())
            .unwrap();
        let b = Compression::Gzip { level: 1 }
            .apply(b"two\n".to_vec())
            .unwrap();
        let mut both = a;
        both.extend(b);
        let mut out = String::new();
        flate2::read::MultiGzDecoder::new(&both[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "one\ntwo\n");

        let a = Compression::Zstd { level: 3 }
            .apply(b"one\n".to_vec())
            .unwrap();
        let b = Compression::Zstd { level: 19 }
            .apply(b"two\n".to_vec())
            .unwrap();
        let mut both = a;
        both.extend(b);
        assert_eq!(zstd::stream::decode_all(&both[..]).unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn parses_names_and_levels() {
        assert_eq!(
            Compression::parse("GZIP", None),
            Ok(Compression::Gzip { level: 6 })
        );
        assert_eq!(
            Compression::parse("zstd", Some(19)),
            Ok(Compression::Zstd { level: 19 })
        );
        assert!(Compression::parse("gzip", Some(10)).is_err());
        assert!(Compression::parse("lz4", None).is_err());
        assert_eq!(Compression::parse("none", None), Ok(Compression::None));
    }
}
