//! JSON text read into a small tree ([`Value`]) and written back: objects keep their members
//! in input order and numbers keep their text, so a body passed on is what the client sent.
//! (It replaces serde_json, whose parser, `BTreeMap` maps and float code cost ~14 KB gzip of
//! wasm.)

use crate::json_out::push_string;
use std::fmt;

/// Deeper nesting than this is refused (each level is a native stack frame).
const MAX_DEPTH: usize = 128;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

/// A JSON number, kept as its (valid) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(String);

/// A JSON object's members in input order; a name given twice keeps its first place and its
/// last value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

/// Why a text is not JSON, and where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    what: &'static str,
    line: usize,
    column: usize,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.what, self.line, self.column)
    }
}

/// Parses `bytes` (UTF-8 JSON text, one value with optional whitespace around it).
pub fn parse(bytes: &[u8]) -> Result<Value, Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(text),
        Err(e) => Err(Error::at(bytes, e.valid_up_to(), "invalid UTF-8")),
    }
}

/// Parses `text` (one JSON value with optional whitespace around it).
pub fn parse_str(text: &str) -> Result<Value, Error> {
    let mut p = Parser { text, s: text.as_bytes(), pos: 0, depth: 0 };
    p.skip_ws();
    let value = p.value()?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(p.fail("trailing characters"));
    }
    Ok(value)
}

impl Error {
    fn at(s: &[u8], pos: usize, what: &'static str) -> Self {
        let before = &s[..pos.min(s.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        Error { what, line, column }
    }
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn fail(&self, what: &'static str) -> Error {
        Error::at(self.s, self.pos, what)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let here = self.peek() == Some(b);
        self.pos += usize::from(here);
        here
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        match self.peek() {
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fail("expected a value")),
            None => Err(self.fail("end of input while parsing a value")),
        }
    }

    fn nested(&mut self, read: fn(&mut Self) -> Result<Value, Error>) -> Result<Value, Error> {
        if self.depth == MAX_DEPTH {
            return Err(self.fail("nested too deeply"));
        }
        self.depth += 1;
        self.pos += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, Error> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.fail("expected a value"))
        }
    }

    /// After `,` or the opening bracket: true at the closing one.
    fn list_end(&mut self, close: u8, first: bool) -> Result<bool, Error> {
        self.skip_ws();
        if first && self.eat(close) {
            return Ok(true);
        }
        if first {
            return Ok(false);
        }
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_ws();
                Ok(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Err(self.fail(if close == b']' { "expected `,` or `]`" } else { "expected `,` or `}`" })),
            None => Err(self.fail("end of input while parsing a list")),
        }
    }

    fn array(&mut self) -> Result<Value, Error> {
        let mut items = Vec::new();
        let mut first = true;
        while !self.list_end(b']', first)? {
            first = false;
            items.push(self.value()?);
        }
        Ok(Value::Array(items))
    }

    fn object(&mut self) -> Result<Value, Error> {
        let mut entries = Vec::new();
        let mut first = true;
        while !self.list_end(b'}', first)? {
            first = false;
            if self.peek() != Some(b'"') {
                return Err(self.fail("expected a member name in quotes"));
            }
            let name = self.string()?;
            self.skip_ws();
            if !self.eat(b':') {
                return Err(self.fail("expected `:`"));
            }
            self.skip_ws();
            entries.push((name, self.value()?));
        }
        Ok(Value::Object(Map::from_entries(entries)))
    }

    /// A string, from its opening quote.
    fn string(&mut self) -> Result<String, Error> {
        self.pos += 1;
        let mut out = String::new();
        let mut start = self.pos;
        loop {
            match self.peek() {
                Some(b'"') => {
                    out.push_str(&self.text[start..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(&self.text[start..self.pos]);
                    self.pos += 1;
                    out.push(self.escape()?);
                    start = self.pos;
                }
                Some(0..=0x1f) => return Err(self.fail("control character in a string")),
                Some(_) => self.pos += 1,
                None => return Err(self.fail("end of input while parsing a string")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, Error> {
        let Some(b) = self.peek() else { return Err(self.fail("end of input while parsing a string")) };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if !self.s[self.pos..].starts_with(b"\\u") {
                            return Err(self.fail("lone surrogate in a \\u escape"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.fail("lone surrogate in a \\u escape"));
                        }
                        0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(self.fail("lone surrogate in a \\u escape")),
                    code => code,
                };
                char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
            }
            _ => {
                self.pos -= 1;
                return Err(self.fail("invalid escape"));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
            let Some(digit) = digit else { return Err(self.fail("invalid \\u escape")) };
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    fn digits(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        self.eat(b'-');
        let int = match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                true
            }
            _ => self.digits(),
        };
        let frac = !self.eat(b'.') || self.digits();
        let exp = !matches!(self.peek(), Some(b'e' | b'E')) || {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()
        };
        if !(int && frac && exp) {
            return Err(self.fail("invalid number"));
        }
        Ok(Value::Number(Number(self.text[start..self.pos].to_owned())))
    }
}

impl Map {
    pub fn new() -> Self {
        Map { entries: Vec::new() }
    }

    /// Members as parsed, a repeated name keeping its first place and its last value.
    fn from_entries(mut entries: Vec<(String, Value)>) -> Self {
        let n = entries.len();
        if n <= 16 && !(1..n).any(|i| entries[..i].iter().any(|(name, _)| *name == entries[i].0)) {
            return Map { entries };
        }
        // By name, then place: each run of one name moves its last value to its first place.
        let mut order: Vec<usize> = (0..n).collect();
        heapsort(&mut order, &|a, b| (entries[a].0.as_str(), a) < (entries[b].0.as_str(), b));
        if !order.windows(2).any(|w| entries[w[0]].0 == entries[w[1]].0) {
            return Map { entries };
        }
        let mut keep = vec![true; n];
        let mut run = 0;
        for i in 1..=n {
            if i < n && entries[order[i]].0 == entries[order[run]].0 {
                keep[order[i]] = false;
                continue;
            }
            let (first, last) = (order[run], order[i - 1]);
            if first != last {
                let value = std::mem::replace(&mut entries[last].1, Value::Null);
                entries[first].1 = value;
            }
            run = i;
        }
        let mut place = 0;
        entries.retain(|_| {
            place += 1;
            keep[place - 1]
        });
        Map { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (in its place if present, else last); returns the value it replaced.
    pub fn insert(&mut self, name: String, value: Value) -> Option<Value> {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((name, value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter().map(|(n, v)| (n, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(n, _)| n)
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl std::str::FromStr for Number {
    type Err = Error;

    /// A number from JSON number text (`"0.25"`, `"-3"`, `"1e3"`).
    fn from_str(text: &str) -> Result<Self, Error> {
        match parse_str(text)? {
            Value::Number(n) => Ok(n),
            _ => Err(Error::at(text.as_bytes(), 0, "invalid number")),
        }
    }
}

impl Number {
    /// The number as it was written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number if it is written as a whole number from 0 to `u64::MAX` (no fraction or
    /// exponent).
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }

    /// The number if it is written as a whole number that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    /// The number as an `f64` within a few ulps of the nearest (enough to check a range; no
    /// float parsing code is linked for it). Too large is infinite, too small is zero.
    pub fn as_f64(&self) -> Option<f64> {
        let s = self.0.as_bytes();
        let negative = s.first() == Some(&b'-');
        let (mut mantissa, mut exponent, mut dot, mut i) = (0u64, 0i64, false, usize::from(negative));
        while let Some(&b) = s.get(i) {
            match b {
                b'0'..=b'9' if mantissa < 100_000_000_000_000_000 => {
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    exponent -= i64::from(dot);
                }
                b'0'..=b'9' => exponent += i64::from(!dot),
                b'.' => dot = true,
                _ => break,
            }
            i += 1;
        }
        if let Some(rest) = s.get(i + 1..) {
            let (minus, digits) = match rest.first() {
                Some(b'-') => (true, &rest[1..]),
                Some(b'+') => (false, &rest[1..]),
                _ => (false, rest),
            };
            let e = digits.iter().fold(0i64, |e, d| (e * 10 + i64::from(d - b'0')).min(100_000));
            exponent += if minus { -e } else { e };
        }
        let magnitude = match (mantissa, exponent) {
            (0, _) => 0.0,
            (_, e) if e > 400 => f64::INFINITY,
            (_, e) if e < -400 => 0.0,
            // Powers of ten up to 1e22 are exact: scale in such steps, so that no intermediate
            // power overflows or underflows where the result would not.
            (m, mut e) => {
                let mut v = m as f64;
                while e > 22 {
                    v *= 1e22;
                    e -= 22;
                }
                while e < -22 {
                    v /= 1e22;
                    e += 22;
                }
                if e >= 0 {
                    v * 10f64.powi(e as i32)
                } else {
                    v / 10f64.powi(-e as i32)
                }
            }
        };
        Some(if negative { -magnitude } else { magnitude })
    }

    /// True when it is written as a whole number that fits an `i64` or a `u64`.
    pub fn is_integer(&self) -> bool {
        self.as_i64().is_some() || self.as_u64().is_some()
    }
}

impl Value {
    /// An object's member.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.get(name),
            _ => None,
        }
    }

    /// The value at a JSON Pointer (`/choices/0/delta`), as RFC 6901 reads it.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, |at, token| {
            // Most tokens have no escape: no copy for them.
            let token: std::borrow::Cow<'_, str> =
                if token.contains('~') { token.replace("~1", "/").replace("~0", "~").into() } else { token.into() };
            match at {
                Value::Object(map) => map.get(&token),
                // An index is digits without a leading zero (RFC 6901).
                Value::Array(items) if token == "0" || !token.starts_with(['0', '+']) => {
                    token.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            }
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// The value as compact JSON text, members in their order.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, false);
        out
    }

    /// The value as compact JSON text with every object's members sorted by name: one text
    /// for equal values however their members were ordered (for cache keys).
    pub fn to_canonical_json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, true);
        out
    }

    fn write(&self, out: &mut String, sorted: bool) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.0),
            Value::String(s) => push_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out, sorted);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let entries = &map.entries;
                // The sorted order is made only when asked for (no allocation on the pass-through path).
                let mut order: Vec<usize> = Vec::new();
                if sorted {
                    order = (0..entries.len()).collect();
                    heapsort(&mut order, &|a, b| entries[a].0 < entries[b].0);
                }
                out.push('{');
                for i in 0..entries.len() {
                    let (name, value) = &entries[if sorted { order[i] } else { i }];
                    if i > 0 {
                        out.push(',');
                    }
                    push_string(out, name);
                    out.push(':');
                    value.write(out, sorted);
                }
                out.push('}');
            }
        }
    }
}

/// Sorts indices by `less`: a heapsort (n log n, in place), one copy of the code for every
/// caller, where the standard library's sorts cost kilobytes of wasm per element type and order.
fn heapsort(items: &mut [usize], less: &dyn Fn(usize, usize) -> bool) {
    let sift = |items: &mut [usize], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(items[child], items[child + 1]) {
            child += 1;
        }
        if !less(items[root], items[child]) {
            break;
        }
        items.swap(root, child);
        root = child;
    };
    let n = items.len();
    for start in (0..n / 2).rev() {
        sift(items, start, n);
    }
    for end in (1..n).rev() {
        items.swap(0, end);
        sift(items, 0, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        parse(text.as_bytes()).unwrap().to_json()
    }

    #[test]
    fn values_are_written_back_as_they_came_without_whitespace() {
        let text = r#"{"model":"m","n":-0.5e+3,"list":[1,true,false,null,"x"],"z":{},"a":[]}"#;
        assert_eq!(roundtrip(text), text);
        assert_eq!(roundtrip(" [ 1 , { \"b\" : 2 , \"a\" : 1 } ]\n"), r#"[1,{"b":2,"a":1}]"#);
        assert_eq!(
            parse(b"{\"b\":{\"d\":1,\"c\":2},\"a\":1}").unwrap().to_canonical_json(),
            r#"{"a":1,"b":{"c":2,"d":1}}"#
        );
    }

    #[test]
    fn strings_decode_every_escape_and_reencode_as_serde_json_does() {
        let v = parse(br#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\u0001""#).unwrap();
        assert_eq!(v.as_str(), Some("a\"b\\c/d\u{8}\u{c}\n\r\té😀\u{1}"));
        assert_eq!(v.to_json(), serde_json::to_string(v.as_str().unwrap()).unwrap());
        assert_eq!(parse("\"héllo\"".as_bytes()).unwrap().as_str(), Some("héllo"));
    }

    #[test]
    fn what_serde_json_rejects_is_rejected() {
        let bad: &[&[u8]] = &[
            b"",
            b" ",
            b"{",
            b"[1,]",
            b"[1 2]",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"{a:1}",
            b"01",
            b"1.",
            b".5",
            b"-",
            b"1e",
            b"+1",
            b"tru",
            b"nul",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\\ud800\\u0041\"",
            b"\"a\nb\"",
            b"\"abc",
            b"[1] x",
            b"\xff",
            b"\"\xc3\x28\"",
            b"{\"a\":1}}",
            b"NaN",
            b"Infinity",
        ];
        for input in bad {
            assert!(parse(input).is_err(), "{:?}", String::from_utf8_lossy(input));
            assert!(
                serde_json::from_slice::<serde_json::Value>(input).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(parse(b"{\n  \"a\": tru\n}").unwrap_err().to_string(), "expected a value at line 2 column 8");
        assert_eq!(parse(b"[1").unwrap_err().to_string(), "end of input while parsing a list at line 1 column 3");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(deep(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(parse(deep(MAX_DEPTH + 1).as_bytes()).unwrap_err().what, "nested too deeply");
        assert!(parse(format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1)).as_bytes()).is_err());
    }

    #[test]
    fn a_repeated_name_keeps_its_first_place_and_last_value_as_serde_json_keeps_the_last() {
        let v = parse(br#"{"a":1,"b":2,"a":3,"c":4,"b":5}"#).unwrap();
        assert_eq!(v.to_json(), r#"{"a":3,"b":5,"c":4}"#);
        let wide: String = (0..40).map(|i| format!("\"k{}\":{i},", i % 30)).collect::<String>();
        let v = parse(format!("{{{}\"k0\":\"last\"}}", wide).as_bytes()).unwrap();
        let map = v.as_object().unwrap();
        assert_eq!(map.len(), 30);
        assert_eq!(map.get("k0").and_then(Value::as_str), Some("last"));
        assert_eq!(map.get("k5").and_then(Value::as_u64), Some(35));
        assert_eq!(map.keys().next().map(String::as_str), Some("k0"));
        let serde: serde_json::Value = serde_json::from_str(&format!("{{{}\"k0\":\"last\"}}", wide)).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&v.to_json()).unwrap(), serde);
    }

    #[test]
    fn numbers_read_as_integers_only_when_written_as_integers() {
        let n = |t: &str| t.parse::<Number>().unwrap();
        assert_eq!(n("42").as_u64(), Some(42));
        assert_eq!(n("18446744073709551615").as_u64(), Some(u64::MAX));
        assert_eq!(n("18446744073709551616").as_u64(), None);
        assert_eq!(n("-7").as_u64(), None);
        assert_eq!(n("-7").as_i64(), Some(-7));
        for t in ["1.0", "1e2", "0.5"] {
            assert_eq!(n(t).as_u64(), None, "{t}");
            assert!(!n(t).is_integer(), "{t}");
        }
        assert!("1x".parse::<Number>().is_err());
        assert!("\"1\"".parse::<Number>().is_err());
    }

    #[test]
    fn numbers_read_as_f64_like_serde_json_within_a_few_ulps() {
        for t in [
            "0",
            "-0",
            "2",
            "2.0",
            "0.7",
            "0.25",
            "-2",
            "1.5",
            "1E-2",
            "12.5e1",
            "0.000001",
            "1e300",
            "123456789012345678901234",
            // Normal numbers whose power of ten alone would underflow or overflow.
            "100000000000000000e-320",
            "2.2250738585072014e-308",
            "320862580577912632485.87e-313",
            "-1e-303",
            "1.7976931348623e308",
        ] {
            let ours = t.parse::<Number>().unwrap().as_f64().unwrap();
            let theirs: f64 = t.parse().unwrap();
            assert!((ours - theirs).abs() <= theirs.abs() * 16.0 * f64::EPSILON, "{t}: {ours} vs {theirs}");
        }
        let f = |t: &str| t.parse::<Number>().unwrap().as_f64().unwrap();
        assert_eq!(f("2"), 2.0);
        assert_eq!(f("2.00"), 2.0);
        assert_eq!(f("0e500"), 0.0);
        assert_eq!(f("1e500"), f64::INFINITY);
        assert_eq!(f("-1e500"), f64::NEG_INFINITY);
        assert_eq!(f("1e-500"), 0.0);
    }

    #[test]
    fn heapsort_sorts_any_order() {
        for n in 0..40usize {
            let keys: Vec<u64> = (0..n as u64).map(|i| (i * 7919 + 13) % 23).collect();
            let mut order: Vec<usize> = (0..n).collect();
            heapsort(&mut order, &|a, b| (keys[a], a) < (keys[b], b));
            let mut expected: Vec<usize> = (0..n).collect();
            expected.sort_by_key(|&i| (keys[i], i));
            assert_eq!(order, expected, "{n}");
        }
    }

    #[test]
    fn pointers_walk_objects_and_arrays() {
        let v = parse(br#"{"choices":[{"delta":{"content":"hi"}}],"a/b":{"~":1}}"#).unwrap();
        assert_eq!(v.pointer("/choices/0/delta/content").and_then(Value::as_str), Some("hi"));
        assert_eq!(v.pointer("/choices/1"), None);
        assert_eq!(v.pointer("/a~1b/~0").and_then(Value::as_u64), Some(1));
        assert_eq!(v.pointer(""), Some(&v));
        assert_eq!(v.pointer("choices"), None);
        assert_eq!(v.pointer("/choices/00"), None);
        assert_eq!(v.pointer("/choices/+0"), None);
    }

    #[test]
    fn map_edits_keep_places() {
        let Value::Object(mut map) = parse(br#"{"model":"a","stream":true}"#).unwrap() else { panic!() };
        assert_eq!(map.insert("model".into(), Value::String("b".into())), Some(Value::String("a".into())));
        map.insert("n".into(), Value::Null);
        assert_eq!(Value::Object(map.clone()).to_json(), r#"{"model":"b","stream":true,"n":null}"#);
        assert_eq!(map.remove("stream"), Some(Value::Bool(true)));
        assert!(!map.contains_key("stream"));
        assert_eq!(map.into_iter().map(|(k, _)| k).collect::<Vec<_>>(), ["model", "n"]);
    }
}
