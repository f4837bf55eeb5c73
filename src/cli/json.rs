//! Printing `--json` output: the values of [`t_minus::output`], pretty on
//! stdout (documented in docs/json.md).

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter, Serializer};
use t_minus::output::ErrorOutput;

/// A JSON array written to stdout one element at a time, in the bytes
/// [`print`] writes for the whole array: each element is serialized
/// straight into `out`, nested one level deep. A reader that went away
/// stops the writing, not the command.
pub struct ArrayStream<W: std::io::Write> {
    out: W,
    count: usize,
    failed: bool,
    /// serde_json's pretty formatter one level inside an array, as it is
    /// when the whole array's serializer reaches an element.
    nested: PrettyFormatter<'static>,
}

impl<W: std::io::Write> ArrayStream<W> {
    /// An array written to `out`.
    pub fn new(out: W) -> Self {
        let mut nested = PrettyFormatter::new();
        // Opening an array (into nothing) is what moves the formatter one
        // level in.
        let _ = nested.begin_array(&mut std::io::sink());
        ArrayStream {
            out,
            count: 0,
            failed: false,
            nested,
        }
    }

    /// Writes the next element.
    pub fn push(&mut self, value: &impl Serialize) {
        if self.failed {
            return;
        }
        let mut formatter = self.nested.clone();
        let first = self.count == 0;
        let written = (if first {
            self.out.write_all(b"[")
        } else {
            Ok(())
        })
        .and_then(|()| formatter.begin_array_value(&mut self.out, first))
        .map_err(serde_json::Error::io)
        .and_then(|()| value.serialize(&mut Serializer::with_formatter(&mut self.out, formatter)));
        if let Err(e) = written {
            if !e.is_io() {
                eprintln!("error: could not encode JSON: {e}");
            }
            self.failed = true;
        }
        self.count += 1;
    }

    /// Closes the array (`[]` when it is empty) and flushes.
    pub fn finish(mut self) {
        if self.failed {
            return;
        }
        let end = if self.count == 0 { "[]\n" } else { "\n]\n" };
        let _ = self
            .out
            .write_all(end.as_bytes())
            .and_then(|()| self.out.flush());
    }
}

/// Prints a value as pretty JSON on stdout. A reader that went away
/// (`t-minus status --json | head`) is not an error: the command's work is
/// already committed, and printing must not panic.
pub fn print(value: &impl Serialize) {
    use std::io::Write;
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
        }
        Err(e) => eprintln!("error: could not encode JSON: {e}"),
    }
}

/// Prints a failure on stdout: pretty, or as one compact line where the
/// command prints JSON lines (`run`, `wait`).
pub fn print_error(error: &ErrorOutput, line: bool) {
    if line {
        use std::io::Write;
        let text = serde_json::to_string(error).unwrap_or_default();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    } else {
        print(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What [`print`] writes for `values` as one array.
    fn whole(values: &[Value]) -> String {
        serde_json::to_string_pretty(values).unwrap() + "\n"
    }

    fn streamed(values: &[Value]) -> String {
        let mut bytes = Vec::new();
        let mut array = ArrayStream::new(&mut bytes);
        for v in values {
            array.push(v);
        }
        array.finish();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_streamed_array_has_the_bytes_of_the_whole_one() {
        let event = json!({
            "id": "a1b2",
            "about": "two\nlines \"quoted\"",
            "attendees": [{"agent": "alice", "groups": []}, {"agent": "bob"}],
            "payload": {"nested": {"deep": [1, 2, {}]}},
            "none": null,
        });
        let cases = [
            vec![],
            vec![event.clone()],
            vec![event.clone(), json!([]), json!({}), json!("x"), event],
        ];
        for values in cases {
            assert_eq!(streamed(&values), whole(&values));
        }
    }

    #[test]
    fn a_reader_that_went_away_stops_the_writing_quietly() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut array = ArrayStream::new(Closed);
        array.push(&json!(1));
        array.push(&json!(2));
        assert!(array.failed);
        array.finish();
    }
}
