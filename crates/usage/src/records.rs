//! CSV records read in bounded memory: a record longer than the limit is skipped to its end and
//! reported with its line, never held whole, so one huge line cannot grow the process.
//!
//! Built on `csv_core`, which parses into buffers the caller owns; the `csv` crate's reader grows
//! its record buffer to fit whatever it is given.

use std::io::{self, BufRead};

/// What [`RecordReader::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A record starting on `line`; [`RecordReader::record`] holds it.
    Record {
        /// Its first line (1-based).
        line: u64,
    },
    /// A record starting on `line` that was longer than the limit (`bytes` of cell data); it was
    /// skipped.
    TooLong {
        /// Its first line.
        line: u64,
        /// Bytes of cell data it held.
        bytes: u64,
    },
    /// A record starting on `line` with more than the allowed number of cells; it was skipped.
    TooManyFields {
        /// Its first line.
        line: u64,
        /// How many cells it had.
        fields: u64,
    },
    /// No more records.
    End,
}

/// The cells of the last record read.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    data: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    /// Number of cells.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Cell `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.data[start..end])
    }
}

/// Reads CSV records from `input` with at most `max_record_bytes` of cell data and `max_fields`
/// cells per record, tracking the byte offset and line of the next record.
pub struct RecordReader<R> {
    input: R,
    core: csv_core::Reader,
    data: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    fields: usize,
    offset: u64,
    line: u64,
    ended: bool,
}

impl<R: BufRead> RecordReader<R> {
    /// A reader whose `input` starts at byte `offset` of the file, on line `line`.
    pub fn new(input: R, offset: u64, line: u64, max_record_bytes: usize, max_fields: usize) -> Self {
        Self {
            input,
            core: csv_core::Reader::new(),
            // One byte more than allowed, so a record of exactly the limit fits.
            data: vec![0; max_record_bytes.max(1) + 1],
            ends: vec![0; max_fields.max(1)],
            len: 0,
            fields: 0,
            offset,
            line: line.max(1),
            ended: false,
        }
    }

    /// Allows at most `max_fields` cells per record from now on.
    pub fn set_max_fields(&mut self, max_fields: usize) {
        self.ends = vec![0; max_fields.max(1)];
    }

    /// The byte offset and line of the next unread record.
    pub fn position(&self) -> (u64, u64) {
        (self.offset, self.line)
    }

    /// The last record read (valid after [`Found::Record`]).
    pub fn record(&self) -> Record<'_> {
        Record { data: &self.data[..self.len], ends: &self.ends[..self.fields] }
    }

    /// Reads the next record.
    pub fn read(&mut self) -> io::Result<Found> {
        if self.ended {
            return Ok(Found::End);
        }
        self.skip_line_ends()?;
        let line = self.line;
        let (mut overflow, mut extra_fields) = (0u64, 0u64);
        self.len = 0;
        self.fields = 0;
        loop {
            let input = self.input.fill_buf()?;
            let (result, read, written, ended) =
                self.core.read_record(input, &mut self.data[self.len..], &mut self.ends[self.fields..]);
            self.line += input[..read].iter().filter(|b| **b == b'\n').count() as u64;
            self.offset += read as u64;
            self.input.consume(read);
            self.len += written;
            self.fields += ended;
            match result {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    // Too long: keep parsing to the record's end, dropping its cells.
                    overflow += self.len as u64;
                    self.len = 0;
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    extra_fields += self.fields as u64;
                    self.fields = 0;
                }
                csv_core::ReadRecordResult::Record => break,
                csv_core::ReadRecordResult::End => {
                    self.ended = true;
                    return Ok(Found::End);
                }
            }
        }
        if overflow > 0 {
            return Ok(Found::TooLong { line, bytes: overflow + self.len as u64 });
        }
        if extra_fields > 0 {
            return Ok(Found::TooManyFields { line, fields: extra_fields + self.fields as u64 });
        }
        Ok(Found::Record { line })
    }

    /// Consumes the line ends before a record (csv_core skips empty lines too), so the record's
    /// line is the one its first byte is on.
    fn skip_line_ends(&mut self) -> io::Result<()> {
        loop {
            let input = self.input.fill_buf()?;
            let blank = input.iter().take_while(|b| matches!(b, b'\n' | b'\r')).count();
            let whole = blank == input.len();
            self.line += input[..blank].iter().filter(|b| **b == b'\n').count() as u64;
            self.offset += blank as u64;
            self.input.consume(blank);
            if !whole || blank == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8], max_bytes: usize, max_fields: usize) -> Vec<(Found, Vec<String>)> {
        // A tiny buffer, so records cross buffer ends.
        let input = io::BufReader::with_capacity(3, text);
        let mut reader = RecordReader::new(input, 0, 1, max_bytes, max_fields);
        let mut out = Vec::new();
        loop {
            let found = reader.read().unwrap();
            let cells = match found {
                Found::Record { .. } => {
                    let r = reader.record();
                    (0..r.len()).map(|i| String::from_utf8_lossy(r.get(i).unwrap()).into_owned()).collect()
                }
                _ => Vec::new(),
            };
            out.push((found, cells));
            if found == Found::End {
                return out;
            }
        }
    }

    #[test]
    fn records_come_with_their_first_line_across_quotes_blank_lines_and_crlf() {
        let got = all(b"a,b\r\n\r\n\"x\ny\",2\n\nlast,\"q\"\"uote\"", 64, 4);
        assert_eq!(got[0], (Found::Record { line: 1 }, vec!["a".into(), "b".into()]));
        assert_eq!(got[1], (Found::Record { line: 3 }, vec!["x\ny".into(), "2".into()]));
        assert_eq!(got[2], (Found::Record { line: 6 }, vec!["last".into(), "q\"uote".into()]));
        assert_eq!(got[3].0, Found::End);
    }

    #[test]
    fn a_record_over_the_limit_is_skipped_whole_and_reading_goes_on() {
        let mut text = b"id,v\n1,ok\n2,".to_vec();
        text.extend(std::iter::repeat_n(b'z', 10_000));
        text.extend_from_slice(b"\n3,\"also\nfine\"\n4,a,b,c,d,e\n5,end\n");
        let got = all(&text, 100, 3);
        assert_eq!(got[1], (Found::Record { line: 2 }, vec!["1".into(), "ok".into()]));
        assert_eq!(got[2].0, Found::TooLong { line: 3, bytes: 10_001 });
        assert_eq!(got[3], (Found::Record { line: 4 }, vec!["3".into(), "also\nfine".into()]));
        assert_eq!(got[4].0, Found::TooManyFields { line: 6, fields: 6 });
        assert_eq!(got[5], (Found::Record { line: 7 }, vec!["5".into(), "end".into()]));
        assert_eq!(got[6].0, Found::End);
    }

    #[test]
    fn a_record_of_exactly_the_limit_is_read_and_one_byte_more_is_not() {
        let got = all(b"abcd,ef\nabcd,efg\n", 6, 4);
        assert_eq!(got[0], (Found::Record { line: 1 }, vec!["abcd".into(), "ef".into()]));
        assert_eq!(got[1].0, Found::TooLong { line: 2, bytes: 7 });
    }

    #[test]
    fn the_position_is_where_the_next_record_starts() {
        let text = b"h1,h2\nr1,x\nr2,y\n";
        let mut reader = RecordReader::new(&text[..], 0, 1, 64, 4);
        reader.read().unwrap();
        reader.read().unwrap();
        assert_eq!(reader.position(), (11, 3));
        let mut resumed = RecordReader::new(&text[11..], 11, 3, 64, 4);
        assert_eq!(resumed.read().unwrap(), Found::Record { line: 3 });
        assert_eq!(resumed.record().get(0), Some(&b"r2"[..]));
    }
}
