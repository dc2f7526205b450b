//! HTTP requests as intents: route rules (method + path pattern → action + resource, task).
//! Shared by the decision server's ext_authz endpoint and the proxy-wasm filter, so both map a
//! request the same way.

use crate::intent::Intent;
use serde::Deserialize;
use std::borrow::Cow;

/// One rule: `GET /payroll/{run}/{emp}` → `read` on `PayrollRecord::"{run}/{emp}"`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// An HTTP method, or `*` for any.
    pub method: String,
    /// Segments, `{name}` capturing one, a final `*` matching the rest.
    pub path: String,
    pub action: String,
    /// A Cedar uid template, captures substituted: `PayrollRecord::"{run}/{emp}"`.
    pub resource: String,
    /// The task the intent belongs to (template), if any.
    #[serde(default)]
    pub task: Option<String>,
}

/// Routes for the shipped pack's scenarios, so a proxy works out of the box.
pub fn default_routes() -> Vec<Route> {
    let r = |method: &str, path: &str, action: &str, resource: &str, task: Option<&str>| Route {
        method: method.into(),
        path: path.into(),
        action: action.into(),
        resource: resource.into(),
        task: task.map(Into::into),
    };
    vec![
        r("GET", "/payroll/{run}/{emp}", "read", r#"PayrollRecord::"{run}/{emp}""#, Some("{run}")),
        r("POST", "/payroll/{run}/{emp}/send", "send", r#"PayrollRecord::"{run}/{emp}""#, Some("{run}")),
        r("GET", "/datasets/{name}", "read", r#"Dataset::"{name}""#, None),
        r("POST", "/datasets/{name}/send", "send", r#"Dataset::"{name}""#, None),
        r("POST", "/tools/{tool}", "invoke", r#"Tool::"{tool}""#, None),
        r("POST", "/deploy/{env}", "deploy", r#"Environment::"{env}""#, None),
    ]
}

/// A route's path pattern: literal segments, `{name}` capturing one, a final `*` the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Var(String),
    Rest,
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect()
}

impl Pattern {
    pub fn parse(path: &str) -> Result<Pattern, String> {
        if !path.starts_with('/') {
            return Err("a path pattern starts with `/`".into());
        }
        let parts = segments(path);
        let mut segs = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if *p == "*" {
                if i + 1 != parts.len() {
                    return Err("`*` may only end a pattern".into());
                }
                segs.push(Seg::Rest);
            } else if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("`{p}` is not a capture like `{{name}}`"));
                }
                segs.push(Seg::Var(name.into()));
            } else {
                segs.push(Seg::Lit((*p).into()));
            }
        }
        Ok(Pattern(segs))
    }

    /// Captures (percent-decoded) when a path, already split into segments (one split per
    /// request, not per rule), matches.
    fn captures<'a>(&'a self, parts: &[&'a str]) -> Option<Captures<'a>> {
        let mut caps = Vec::new();
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Rest => {
                    caps.push(("*", Cow::Owned(parts.get(i..).map(|r| r.join("/")).unwrap_or_default())));
                    return Some(caps);
                }
                Seg::Lit(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Seg::Var(v) => {
                    let p = parts.get(i)?;
                    caps.push((v.as_str(), percent_encoding::percent_decode_str(p).decode_utf8().ok()?));
                }
            }
        }
        (parts.len() == self.0.len()).then_some(caps)
    }
}

type Captures<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// `template` with each `{name}` replaced by its capture, in one pass (a captured value is
/// never expanded again); values are escaped for a Cedar string. Unknown names stay as written.
fn expand(template: &str, caps: &[(&str, Cow<'_, str>)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let value = after.find('}').and_then(|j| caps.iter().find(|(k, _)| *k == &after[..j]).map(|(_, v)| (j, v)));
        match value {
            Some((j, v)) => {
                for c in v.chars() {
                    if c == '\\' || c == '"' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Route rules, compiled; the first matching rule wins.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<(Pattern, Route)>);

impl Routes {
    /// Every rule's pattern parsed; an error names the rule.
    pub fn compile(routes: &[Route]) -> Result<Routes, String> {
        routes
            .iter()
            .map(|r| {
                Pattern::parse(&r.path)
                    .map(|p| (p, r.clone()))
                    .map_err(|e| format!("route `{} {}`: {e}", r.method, r.path))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Routes)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The intent of `method path` (a query string is ignored), with `context` as its JSON
    /// context; `None` when no rule matches.
    pub fn intent(&self, method: &str, path: &str, context: &str) -> Option<Intent> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let parts = segments(path);
        self.0.iter().find_map(|(p, r)| {
            if r.method != "*" && !r.method.eq_ignore_ascii_case(method) {
                return None;
            }
            let caps = p.captures(&parts)?;
            Some(Intent {
                action: r.action.clone(),
                resource: expand(&r.resource, &caps),
                task_id: r.task.as_deref().map(|t| expand(t, &caps)).unwrap_or_default(),
                context: context.to_string(),
                input: String::new(),
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A pattern's captures for `path`, as owned strings.
    fn matches(p: &Pattern, path: &str) -> Option<BTreeMap<String, String>> {
        let parts = segments(path);
        p.captures(&parts).map(|caps| caps.into_iter().map(|(k, v)| (k.to_string(), v.into_owned())).collect())
    }

    fn fill(template: &str, caps: &BTreeMap<String, String>) -> String {
        let caps: Captures<'_> = caps.iter().map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str()))).collect();
        expand(template, &caps)
    }

    #[test]
    fn patterns_capture_and_refuse() {
        let p = Pattern::parse("/payroll/{run}/{emp}").unwrap();
        let c = matches(&p, "/payroll/run-42/emp%207").unwrap();
        assert_eq!((c["run"].as_str(), c["emp"].as_str()), ("run-42", "emp 7"));
        assert!(matches(&p, "/payroll/run-42").is_none());
        assert!(matches(&p, "/payroll/run-42/emp-7/extra").is_none());
        assert!(matches(&p, "/other/run-42/emp-7").is_none());
        let rest = Pattern::parse("/files/*").unwrap();
        assert_eq!(matches(&rest, "/files/a/b/c").unwrap()["*"], "a/b/c");
        assert!(Pattern::parse("/a/*/b").is_err());
        assert!(Pattern::parse("a").is_err());
        assert!(Pattern::parse("/{bad name}").is_err());
        let caps: BTreeMap<String, String> = [("run".to_string(), "x\"y".to_string())].into();
        assert_eq!(fill(r#"PayrollRecord::"{run}""#, &caps), r#"PayrollRecord::"x\"y""#);
        // One pass: a captured `{name}` is data, not a template; unknown names stay.
        let caps: BTreeMap<String, String> =
            [("a".to_string(), "{b}".to_string()), ("b".to_string(), "B".to_string())].into();
        assert_eq!(fill("{a}/{b}/{c}/{", &caps), "{b}/B/{c}/{");
    }

    #[test]
    fn routes_map_requests_to_intents() {
        let routes = Routes::compile(&default_routes()).unwrap();
        let i = routes.intent("get", "/payroll/run-7/emp-1?verbose=1", r#"{"a":1}"#).unwrap();
        assert_eq!(
            (i.action.as_str(), i.resource.as_str(), i.task_id.as_str()),
            ("read", r#"PayrollRecord::"run-7/emp-1""#, "run-7")
        );
        assert_eq!(i.context, r#"{"a":1}"#);
        assert!(routes.intent("DELETE", "/payroll/run-7/emp-1", "").is_none());
        assert_eq!(routes.intent("POST", "/datasets/hr/send", "").unwrap().action, "send");
        let bad = Route {
            method: "*".into(),
            path: "/x/*/y".into(),
            action: "a".into(),
            resource: "R::\"r\"".into(),
            task: None,
        };
        assert!(Routes::compile(&[bad]).unwrap_err().contains("/x/*/y"));
    }
}
