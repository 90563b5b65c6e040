//! The bencode subset rtpengine's ng control protocol speaks.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
}

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("bad bencode at byte {0}")]
pub struct BencodeError(usize);

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Value::List(items) => {
                out.push(b'l');
                items.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Value::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// Decodes one value from the start of `input`.
pub fn decode(input: &[u8]) -> Result<Value, BencodeError> {
    value(input, &mut 0)
}

fn value(input: &[u8], pos: &mut usize) -> Result<Value, BencodeError> {
    let err = BencodeError(*pos);
    match input.get(*pos).copied().ok_or(err)? {
        b'i' => {
            let end = find(input, *pos, b'e').ok_or(err)?;
            let text = std::str::from_utf8(&input[*pos + 1..end]).map_err(|_| err)?;
            *pos = end + 1;
            text.parse().map(Value::Int).map_err(|_| err)
        }
        b'l' | b'd' => {
            let is_dict = input[*pos] == b'd';
            *pos += 1;
            let mut items = Vec::new();
            let mut entries = Vec::new();
            while input.get(*pos) != Some(&b'e') {
                if is_dict {
                    let Value::Bytes(k) = value(input, pos)? else { return Err(BencodeError(*pos)) };
                    entries.push((k, value(input, pos)?));
                } else {
                    items.push(value(input, pos)?);
                }
            }
            *pos += 1;
            Ok(if is_dict { Value::Dict(entries) } else { Value::List(items) })
        }
        b'0'..=b'9' => {
            let colon = find(input, *pos, b':').ok_or(err)?;
            let len: usize = std::str::from_utf8(&input[*pos..colon])
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or(err)?;
            let bytes = input.get(colon + 1..colon + 1 + len).ok_or(err)?;
            *pos = colon + 1 + len;
            Ok(Value::Bytes(bytes.to_vec()))
        }
        _ => Err(err),
    }
}

fn find(input: &[u8], from: usize, byte: u8) -> Option<usize> {
    input.get(from..)?.iter().position(|&b| b == byte).map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = Value::Dict(vec![
            (b"command".to_vec(), Value::str("offer")),
            (b"flags".to_vec(), Value::List(vec![Value::str("a"), Value::Int(-3)])),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(out, b"d7:command5:offer5:flagsl1:ai-3eee");
        assert_eq!(decode(&out), Ok(v));
        assert!(decode(b"d3:abc").is_err());
        assert!(decode(b"99:x").is_err());
    }
}
