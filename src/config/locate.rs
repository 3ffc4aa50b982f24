//! Where a key is written in the YAML text: `session.ttl` → line 8.
//!
//! Why: an operator fixing a config wants the key and its line. Errors that
//! serde_norway raises while reading a value carry both already (the value
//! newtypes in [`super::input`] convert inside their visitors for that
//! reason), but checks that run afterwards — bounds that depend on other
//! keys, cross-key rules, files that cannot be read — only know the key
//! path. This module walks the parser's events once more and returns the
//! line of that key; it never fails the config load itself (an unknown path
//! just has no line).

use saphyr_parser::{Event, Parser};

/// The 1-based line where `key_path` (`a.b`, `routes[2].allow`) is written
/// as a key, or `None` when the text does not spell that key.
pub fn key_line(yaml: &str, key_path: &str) -> Option<usize> {
    let mut parser = Parser::new_from_str(yaml);
    let mut stack: Vec<Frame> = Vec::new();
    // Only the first document counts, as for serde_norway::from_str.
    while let Some(Ok((event, span))) = parser.next_event() {
        match event {
            Event::StreamEnd | Event::DocumentEnd => return None,
            Event::Scalar(value, ..) => {
                if let Some(Frame::Mapping { path, at_key, key }) = stack.last_mut()
                    && *at_key
                {
                    let full = join_key(path, &value);
                    if full == key_path {
                        return Some(span.start.line());
                    }
                    *key = value.into_owned();
                    *at_key = false;
                    continue;
                }
                // A scalar item of a list (`redirect_uris[1]`) is its own line.
                if let Some(Frame::Sequence { path, index }) = stack.last()
                    && format!("{path}[{index}]") == key_path
                {
                    return Some(span.start.line());
                }
                value_done(&mut stack);
            }
            Event::Alias(_) => value_done(&mut stack),
            Event::MappingStart(..) => {
                let path = child_path(&stack);
                stack.push(Frame::Mapping {
                    path,
                    at_key: true,
                    key: String::new(),
                });
            }
            Event::SequenceStart(..) => {
                let path = child_path(&stack);
                stack.push(Frame::Sequence { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                value_done(&mut stack);
            }
            _ => {}
        }
    }
    None
}

enum Frame {
    Mapping {
        path: String,
        /// The next scalar is a key (not its value).
        at_key: bool,
        key: String,
    },
    Sequence {
        path: String,
        index: usize,
    },
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The path of the value that starts now, inside the innermost collection.
fn child_path(stack: &[Frame]) -> String {
    match stack.last() {
        None => String::new(),
        Some(Frame::Mapping { path, key, .. }) => join_key(path, key),
        Some(Frame::Sequence { path, index }) => format!("{path}[{index}]"),
    }
}

/// A whole value has been read: a mapping expects its next key, a sequence
/// its next item.
fn value_done(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Mapping { at_key, .. }) => *at_key = true,
        Some(Frame::Sequence { index, .. }) => *index += 1,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::key_line;

    const TEXT: &str = "\
listen: \"127.0.0.1:8080\"
chain:
  name: steem
  account: mygate
session:
  secret: x
  ttl: forever
routes:
  - path: /a
    upstream: \"http://127.0.0.1:3000\"
    auth: required
  - {path: /b, upstream: \"http://127.0.0.1:3001\",
     auth: public, allow: [alice, bob]}
log: {level: info}
";

    #[test]
    fn finds_nested_keys_in_block_and_flow_style() {
        assert_eq!(key_line(TEXT, "listen"), Some(1));
        assert_eq!(key_line(TEXT, "chain.account"), Some(4));
        assert_eq!(key_line(TEXT, "session"), Some(5));
        assert_eq!(key_line(TEXT, "session.ttl"), Some(7));
        assert_eq!(key_line(TEXT, "routes[0].auth"), Some(11));
        assert_eq!(key_line(TEXT, "routes[1].path"), Some(12));
        assert_eq!(key_line(TEXT, "routes[1].allow"), Some(13));
        assert_eq!(key_line(TEXT, "log.level"), Some(14));
        assert_eq!(key_line(TEXT, "routes[1].allow[1]"), Some(13));
        assert_eq!(key_line(TEXT, "routes[1].allow[2]"), None);
    }

    #[test]
    fn absent_keys_and_broken_text_have_no_line() {
        assert_eq!(key_line(TEXT, "session.cache_ttl"), None);
        assert_eq!(key_line(TEXT, "routes[2].path"), None);
        assert_eq!(key_line(TEXT, "ttl"), None);
        assert_eq!(key_line("a: [unclosed", "a"), Some(1));
        assert_eq!(key_line("\t: :", "x"), None);
        assert_eq!(key_line("", "x"), None);
    }
}
