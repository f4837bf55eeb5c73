//! Printing `--json` output: the values of [`t_minus::output`], pretty on
//! stdout (documented in docs/json.md).

use serde::Serialize;
use t_minus::output::ErrorOutput;

/// A JSON array written to stdout one element at a time, in the bytes
/// [`print`] writes for the whole array. A reader that went away stops the
/// writing, not the command.
pub struct ArrayStream<W: std::io::Write> {
    out: W,
    count: usize,
    failed: bool,
}

impl<W: std::io::Write> ArrayStream<W> {
    /// An array written to `out`.
    pub fn new(out: W) -> Self {
        ArrayStream {
            out,
            count: 0,
            failed: false,
        }
    }

    /// Writes the next element.
    pub fn push(&mut self, value: &impl Serialize) {
        if self.failed {
            return;
        }
        let text = match serde_json::to_string_pretty(value) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("error: could not encode JSON: {e}");
                self.failed = true;
                return;
            }
        };
        let mut chunk = String::with_capacity(text.len() + text.len() / 8 + 4);
        chunk.push_str(if self.count == 0 { "[\n" } else { ",\n" });
        // Nested one level deeper: JSON text has line breaks only between
        // tokens (a string's own are escaped), so each line is indented.
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                chunk.push('\n');
            }
            chunk.push_str("  ");
            chunk.push_str(line);
        }
        self.count += 1;
        self.failed = self.out.write_all(chunk.as_bytes()).is_err();
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
