//! AuthZEN request decoding, exactly as the decision server runs it (`writ_types::authzen`):
//! any body is decoded or refused with a 4xx — never a panic — and what decodes is
//! well-formed.

use writ_types::authzen as decode;

/// One input.
pub fn run(data: &[u8]) {
    let Ok(req) = decode::object_body(data) else { return };
    let _ = decode::semantic(&req);
    let evals = match decode::items(&req) {
        Ok(Some(items)) => {
            assert!(!items.is_empty() && items.len() <= decode::MAX_ITEMS);
            items.iter().map(decode::evaluation).collect::<Vec<_>>()
        }
        Ok(None) => vec![decode::evaluation(&req)],
        Err(e) => {
            assert!((400..500).contains(&e.status));
            return;
        }
    };
    for e in evals {
        match e {
            Ok(e) => {
                for s in [&e.subject.type_name, &e.subject.id, &e.action, &e.resource.type_name, &e.resource.id] {
                    assert!(!s.is_empty());
                }
                for p in [&e.subject.properties, &e.action_properties, &e.resource.properties, &e.context] {
                    assert!(
                        p.is_empty()
                            || matches!(serde_json::from_str::<serde_json::Value>(p), Ok(serde_json::Value::Object(_)))
                    );
                }
            }
            Err(e) => assert!((400..500).contains(&e.status)),
        }
    }
}
