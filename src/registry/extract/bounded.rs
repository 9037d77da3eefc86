//! Input that must end: a registry file is read through [`Bounded`], which refuses a line
//! longer than [`MAX_LINE`] and a file larger than [`MAX_FILE`], so `/dev/zero` or a
//! runaway pipe is refused by size instead of filling memory.

use std::io::{self, Read};

/// The longest line an extract or change file may have (a resident's row is about 150 bytes).
pub const MAX_LINE: usize = 64 * 1024;

/// The largest file (about 25 million residents at 150 bytes a row).
pub const MAX_FILE: u64 = 4 << 30;

/// A reader that fails once a line or the whole input is too long.
pub struct Bounded<R> {
    inner: R,
    line: usize,
    total: u64,
}

impl<R: Read> Bounded<R> {
    /// Bound `inner`.
    pub fn new(inner: R) -> Self {
        Bounded {
            inner,
            line: 0,
            total: 0,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total > MAX_FILE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the file is larger than {} GiB", MAX_FILE >> 30),
            ));
        }
        for b in &buf[..n] {
            if *b == b'\n' {
                self.line = 0;
            } else {
                self.line += 1;
                if self.line > MAX_LINE {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a line is longer than {} KiB", MAX_LINE / 1024),
                    ));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_line_is_refused_by_size() {
        let mut sink = Vec::new();
        let e = Bounded::new(io::repeat(0))
            .read_to_end(&mut sink)
            .unwrap_err();
        assert!(e.to_string().contains("longer than 64 KiB"), "{e}");
        assert!(sink.len() <= MAX_LINE + 64 * 1024, "{}", sink.len());
        let ok = "a,b\n".repeat(100_000);
        let mut back = String::new();
        Bounded::new(ok.as_bytes())
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, ok);
    }
}
