//! Caller JSON (a `claimed` context, a call's `input`) built straight into Cedar values, with
//! its type written down as Cedar's request validation sees it.
//!
//! Cedar's JSON reader costs tens of µs on a small object; plain JSON (no `null`, whole
//! numbers, no `__entity`/`__extn` escape) needs none of what it does. And validation of a
//! context against the schema only looks at types — which keys a record has and the type of
//! each, the types a set's elements have, whether a leaf is a boolean, a whole number or a
//! string — never at values. So once a request of one scope and one context type has passed,
//! every later request of that scope and type would: the store skips validating those.

use cedar_policy::RestrictedExpression;
use serde_json::{Map, Value};

/// What the caller's JSON is built into: Cedar values, or nothing (the type text alone).
pub(super) trait Build {
    type Value;
    type Key;
    fn key(k: &str) -> Self::Key;
    fn bool(b: bool) -> Self::Value;
    fn long(n: i64) -> Self::Value;
    fn string(s: &str) -> Self::Value;
    fn set(elements: Vec<Self::Value>) -> Self::Value;
    fn record(fields: Vec<(Self::Key, Self::Value)>) -> Option<Self::Value>;
}

/// Cedar values.
pub(super) struct Cedar;

impl Build for Cedar {
    type Value = RestrictedExpression;
    type Key = String;
    fn key(k: &str) -> String {
        k.to_string()
    }
    fn bool(b: bool) -> RestrictedExpression {
        RestrictedExpression::new_bool(b)
    }
    fn long(n: i64) -> RestrictedExpression {
        RestrictedExpression::new_long(n)
    }
    fn string(s: &str) -> RestrictedExpression {
        RestrictedExpression::new_string(s.to_string())
    }
    fn set(elements: Vec<RestrictedExpression>) -> RestrictedExpression {
        RestrictedExpression::new_set(elements)
    }
    fn record(fields: Vec<(String, RestrictedExpression)>) -> Option<RestrictedExpression> {
        RestrictedExpression::new_record(fields).ok()
    }
}

/// The type text alone: whether the JSON is plainly Cedar, and of which type.
pub(super) struct TypeOnly;

impl Build for TypeOnly {
    type Value = ();
    type Key = ();
    fn key(_: &str) {}
    fn bool(_: bool) {}
    fn long(_: i64) {}
    fn string(_: &str) {}
    fn set(_: Vec<()>) {}
    fn record(_: Vec<((), ())>) -> Option<()> {
        Some(())
    }
}

/// `o` as record fields, when it is plainly Cedar (`None` otherwise: the caller then lets
/// Cedar's JSON reader decide), its type appended to `ty`: `{` then `<key length>:<key><type>,`
/// per field in the map's order, then `}`. Every key is length-prefixed, so two different types
/// never write the same text.
pub(super) fn direct_record<B: Build>(o: &Map<String, Value>, ty: &mut String) -> Option<Vec<(B::Key, B::Value)>> {
    if o.contains_key("__entity") || o.contains_key("__extn") {
        return None;
    }
    ty.push('{');
    let mut fields = Vec::with_capacity(o.len());
    for (k, v) in o {
        push_decimal(ty, k.len());
        ty.push(':');
        ty.push_str(k);
        fields.push((B::key(k), direct_value::<B>(v, ty)?));
        ty.push(',');
    }
    ty.push('}');
    Some(fields)
}

/// `n` in decimal appended to `ty` (without the formatting machinery: this runs per key).
fn push_decimal(ty: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // A digit: `n % 10` is below ten.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[at..] {
        ty.push(char::from(*d));
    }
}

/// A JSON value as a value, its type appended to `ty`: `b`, `l`, `s`, a record as in
/// [`direct_record`], a set as `[` and the distinct types of its elements, sorted, each
/// followed by `,`, then `]` (a set's validity depends on which types its elements have, not
/// on how many have each or in what order).
fn direct_value<B: Build>(v: &Value, ty: &mut String) -> Option<B::Value> {
    match v {
        Value::Bool(b) => {
            ty.push('b');
            Some(B::bool(*b))
        }
        Value::Number(n) => {
            ty.push('l');
            n.as_i64().map(B::long)
        }
        Value::String(s) => {
            ty.push('s');
            Some(B::string(s))
        }
        Value::Array(a) => {
            let mut elements = Vec::with_capacity(a.len());
            let mut types = Vec::with_capacity(a.len());
            for e in a {
                let mut t = String::new();
                elements.push(direct_value::<B>(e, &mut t)?);
                types.push(t);
            }
            types.sort_unstable();
            types.dedup();
            ty.push('[');
            for t in types {
                ty.push_str(&t);
                ty.push(',');
            }
            ty.push(']');
            Some(B::set(elements))
        }
        Value::Object(o) => direct_record::<B>(o, ty).and_then(B::record),
        Value::Null => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ty(v: Value) -> Option<String> {
        let mut t = String::new();
        direct_record::<Cedar>(v.as_object()?, &mut t)?;
        let mut alone = String::new();
        direct_record::<TypeOnly>(v.as_object()?, &mut alone)?;
        assert_eq!(t, alone, "the type text does not depend on what is built");
        Some(t)
    }

    #[test]
    fn key_lengths_are_written_in_decimal() {
        for n in [0, 1, 9, 10, 99, 100, 65_536, usize::MAX] {
            let mut t = String::new();
            push_decimal(&mut t, n);
            assert_eq!(t, n.to_string());
        }
    }

    #[test]
    fn values_of_one_type_write_one_text() {
        assert_eq!(ty(json!({"destination": "a"})), ty(json!({"destination": "paste.example.net"})));
        assert_eq!(ty(json!({"n": [1, 2, 2, 3]})), ty(json!({"n": [7]})));
        assert_eq!(ty(json!({"n": [1, "x"]})), ty(json!({"n": ["y", 2, 3]})));
        assert_eq!(ty(json!({"r": {"a": true, "b": 1}})), ty(json!({"r": {"a": false, "b": 5}})));
    }

    #[test]
    fn values_of_other_types_write_other_texts() {
        let texts = [
            json!({}),
            json!({"destination": "a"}),
            json!({"destination": 1}),
            json!({"destination": true}),
            json!({"destination": ["a"]}),
            json!({"destination": []}),
            json!({"destination": {"a": "b"}}),
            json!({"destination": "a", "x": "b"}),
            json!({"destinatio": "a"}),
            json!({"n": [1]}),
            json!({"n": [1, "x"]}),
            json!({"n": [[1]]}),
            json!({"n": [{"a": 1}]}),
            json!({"n": [{"a": 1}, {"a": 1, "b": 2}]}),
            // A key holding the type syntax cannot pass for another record.
            json!({"a": "s", "1:b": "s"}),
            json!({"a": {"1:b": "s"}}),
        ]
        .map(|v| ty(v).unwrap());
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn json_that_is_not_plainly_cedar_is_left_to_cedars_reader() {
        assert_eq!(ty(json!({"a": null})), None);
        assert_eq!(ty(json!({"a": 1.5})), None);
        assert_eq!(ty(json!({"a": u64::MAX})), None);
        assert_eq!(ty(json!({"a": {"__entity": {"type": "Tool", "id": "x"}}})), None);
        assert_eq!(ty(json!({"a": [{"__extn": {"fn": "ip", "arg": "10.0.0.1"}}]})), None);
    }
}
