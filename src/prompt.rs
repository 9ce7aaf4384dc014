//! Interactive set-up: the fields a provider asks a person for, in the order and with the short
//! labels it declares (`x-prompt` / `x-secret-prompts` in its settings schema), each answer checked at once.

use crate::config::FlagValue;
use crate::error::{Error, Result};
use crate::interact::Interaction;
use crate::registry::ProviderInfo;
use crate::secret::Secret;
use crate::settings::{is_loopback_host, EngineSettings};
use serde_json::{json, Map, Value};

/// How an answer is checked before it is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Text,
    /// `https://host/...`, or `http://` on a loopback host.
    Url,
    /// true / false, or the path of an existing PEM CA bundle.
    VerifySsl,
    Integer,
    Bool,
    Choice(Vec<String>),
}

/// One field of a provider as the set-up asks for it.
#[derive(Debug, Clone)]
pub struct SetupField {
    pub name: String,
    pub label: String,
    pub order: i64,
    pub required: bool,
    pub secret: bool,
    pub default: Option<Value>,
    pub check: Check,
    /// The provider asks for it in the set-up even when it is optional.
    pub declared: bool,
}

/// A field's prompt: `Label [default]: `, with what an optional field or a choice needs said.
impl SetupField {
    fn prompt(&self, current: Option<&Value>) -> String {
        let mut text = self.label.clone();
        if let Check::Choice(choices) = &self.check {
            text.push_str(&format!(" ({})", choices.join(", ")));
        }
        match current.or(self.default.as_ref()) {
            Some(v) if !self.secret => text.push_str(&format!(" [{}]", display(v))),
            Some(_) => text.push_str(" [keep]"),
            None if !self.required => text.push_str(" (optional, Enter to skip)"),
            None => {}
        }
        text.push_str(": ");
        text
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every field of `provider` in set-up order: what it declares with `x-prompt` first (by
/// `order`), the engine's declared settings (`verify_ssl`) among them, then the rest as in its schema.
pub fn setup_fields(provider: &ProviderInfo) -> Vec<SetupField> {
    let schema = (provider.settings_schema)().to_value();
    let mut fields = schema_fields(&schema, true);
    let engine = schemars::schema_for!(EngineSettings).to_value();
    fields.extend(schema_fields(&engine, false).into_iter().filter(|f| f.declared));
    let declared_secrets = schema.get("x-secret-prompts").and_then(Value::as_object);
    for (i, spec) in provider.secrets.iter().enumerate() {
        let declared = declared_secrets.and_then(|d| d.get(spec.name));
        fields.push(SetupField {
            name: spec.name.to_string(),
            label: declared.and_then(|d| d["label"].as_str()).map(String::from).unwrap_or_else(|| humanize(spec.name)),
            order: declared.and_then(|d| d["order"].as_i64()).unwrap_or(2000 + i64::try_from(i).unwrap_or(0)),
            required: spec.required,
            secret: true,
            default: None,
            check: Check::Text,
            declared: declared.is_some(),
        });
    }
    fields.sort_by_key(|f| f.order);
    fields
}

fn schema_fields(schema: &Value, include_undeclared: bool) -> Vec<SetupField> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    let mut out = Vec::new();
    for (i, (name, prop)) in props.iter().enumerate() {
        let declared = prop.get("x-prompt");
        if declared.is_none() && !include_undeclared {
            continue;
        }
        let check = match declared.and_then(|d| d["check"].as_str()) {
            Some("url") => Check::Url,
            Some("verify_ssl") => Check::VerifySsl,
            _ => type_check(prop, schema),
        };
        out.push(SetupField {
            name: name.clone(),
            label: declared.and_then(|d| d["label"].as_str()).map(String::from).unwrap_or_else(|| humanize(name)),
            order: declared.and_then(|d| d["order"].as_i64()).unwrap_or(1000 + i64::try_from(i).unwrap_or(0)),
            required: required.contains(&name.as_str()),
            secret: false,
            default: prop.get("default").filter(|d| !d.is_null()).cloned(),
            check,
            declared: declared.is_some(),
        });
    }
    out
}

/// The check a schema type implies: integers, booleans, and enums (choices).
fn type_check(prop: &Value, root: &Value) -> Check {
    let resolved = match prop.get("$ref").and_then(Value::as_str) {
        Some(r) => root.get("$defs").and_then(|d| d.get(r.rsplit('/').next().unwrap_or_default())).unwrap_or(prop),
        None => prop,
    };
    let choices: Vec<String> = match (resolved.get("enum"), resolved.get("oneOf")) {
        (Some(Value::Array(values)), _) => values.iter().filter_map(Value::as_str).map(String::from).collect(),
        (_, Some(Value::Array(alts))) => alts.iter().filter_map(|a| a["const"].as_str()).map(String::from).collect(),
        _ => Vec::new(),
    };
    if !choices.is_empty() {
        return Check::Choice(choices);
    }
    let types: Vec<&str> = match resolved.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.contains(&"integer") {
        Check::Integer
    } else if types.contains(&"boolean") {
        Check::Bool
    } else {
        Check::Text
    }
}

fn humanize(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Checks one typed answer; `Err` is the reason, said to the person before asking again.
pub fn check(field: &SetupField, answer: &str) -> std::result::Result<Value, String> {
    let answer = answer.trim();
    match &field.check {
        Check::Text => Ok(json!(answer)),
        Check::Url => check_url(answer).map(|u| json!(u)),
        Check::VerifySsl => check_verify_ssl(answer),
        Check::Integer => {
            answer.parse::<i64>().map(|n| json!(n)).map_err(|_| format!("`{answer}` is not a whole number"))
        }
        Check::Bool => parse_bool(answer).map(|b| json!(b)).ok_or_else(|| "answer true or false".to_string()),
        Check::Choice(choices) => choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(answer))
            .map(|c| json!(c))
            .ok_or_else(|| format!("`{answer}` is not one of: {}", choices.join(", "))),
    }
}

fn parse_bool(answer: &str) -> Option<bool> {
    match answer.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `https://host[/path]`, or `http://` on 127.0.0.1 / ::1 / localhost; returned without a trailing slash.
pub fn check_url(answer: &str) -> std::result::Result<String, String> {
    let example = "e.g. https://gis.example.com/portal";
    let Some((scheme, rest)) = answer.split_once("://") else {
        return Err(format!("`{answer}` is not a URL ({example})"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{answer}` has no host name ({example})"));
    }
    let uri: ureq::http::Uri = answer.parse().map_err(|_| format!("`{answer}` is not a valid URL ({example})"))?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("`{answer}` has no host name ({example})"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        "http" => {
            return Err(format!(
                "http:// would send tokens in clear to {host}; use https:// (http:// only for 127.0.0.1/localhost)"
            ))
        }
        other => return Err(format!("`{other}://` is not supported: use https://")),
    }
    Ok(answer.trim_end_matches('/').to_string())
}

/// true / false (yes, no, on, off, 1, 0), or an existing PEM CA bundle (kept as an absolute path).
pub fn check_verify_ssl(answer: &str) -> std::result::Result<Value, String> {
    if let Some(b) = parse_bool(answer) {
        return Ok(json!(b));
    }
    let expanded = match answer.strip_prefix("~/") {
        // The home directory as the platform knows it (HOME on Unix), as `Paths` finds it.
        Some(rest) => directories::BaseDirs::new().map(|d| d.home_dir().join(rest)),
        None => Some(std::path::PathBuf::from(answer)),
    }
    .ok_or_else(|| "cannot expand ~ without HOME".to_string())?;
    let path = std::path::absolute(&expanded).unwrap_or(expanded);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("answer true, false, or the path of a CA file: {} does not exist", path.display()))
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if !String::from_utf8_lossy(&text).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display()));
    }
    Ok(json!(path.display().to_string()))
}

/// A person stopped answering (end of input): nothing is written.
fn cancelled() -> Error {
    Error::Other("set-up cancelled (end of input); nothing was written".into())
}

/// What one question got.
pub enum Answer {
    Value(Value),
    Secret(Secret),
    /// Enter on an optional field or on a default: nothing to write.
    Skip,
}

/// Asks for one field until the answer passes its check. `current` (an earlier answer) is
/// offered as the default and kept on Enter.
pub fn ask(ui: &mut dyn Interaction, field: &SetupField, current: Option<&Answer>) -> Result<Answer> {
    let current_value = match current {
        Some(Answer::Value(v)) => Some(v.clone()),
        Some(Answer::Secret(_)) => Some(json!("")),
        _ => None,
    };
    let prompt = field.prompt(current_value.as_ref());
    loop {
        if field.secret {
            let typed = ui.read_secret(&prompt)?.ok_or_else(cancelled)?;
            if !typed.is_empty() {
                return Ok(Answer::Secret(typed));
            }
            match current {
                Some(Answer::Secret(s)) => return Ok(Answer::Secret(s.clone())),
                _ if !field.required => return Ok(Answer::Skip),
                _ => ui.warn(&format!("{} is required", field.label)),
            }
            continue;
        }
        let typed = ui.read_line(&prompt)?.ok_or_else(cancelled)?;
        if typed.trim().is_empty() {
            match (&current_value, &field.default) {
                (Some(v), _) => return Ok(Answer::Value(v.clone())),
                (None, Some(_)) => return Ok(Answer::Skip),
                (None, None) if !field.required => return Ok(Answer::Skip),
                _ => ui.warn(&format!("{} is required", field.label)),
            }
            continue;
        }
        match check(field, &typed) {
            Ok(value) => return Ok(Answer::Value(value)),
            Err(reason) => ui.warn(&format!("{reason}; try again")),
        }
    }
}

/// Values typed in the set-up, ready for `profile add`.
#[derive(Default)]
pub struct Typed {
    pub flags: Vec<FlagValue>,
    pub secrets: Vec<(String, Secret)>,
}

/// Asks, in the provider's order, for every field that nothing gave yet and that the provider
/// declares for set-up or requires; then `validate`s the whole profile, and while that fails
/// says why and asks the same questions again, each earlier answer kept on Enter.
pub fn run_setup(
    ui: &mut dyn Interaction,
    provider: &ProviderInfo,
    given: &dyn Fn(&SetupField) -> bool,
    validate: &mut dyn FnMut(&[FlagValue]) -> Result<()>,
) -> Result<Typed> {
    let fields: Vec<SetupField> =
        setup_fields(provider).into_iter().filter(|f| (f.declared || f.required) && !given(f)).collect();
    let mut answers: Map<String, Value> = Map::new();
    let mut secrets: Vec<(String, Secret)> = Vec::new();
    loop {
        for field in &fields {
            let current = if field.secret {
                secrets.iter().find(|(k, _)| *k == field.name).map(|(_, s)| Answer::Secret(s.clone()))
            } else {
                answers.get(&field.name).cloned().map(Answer::Value)
            };
            match ask(ui, field, current.as_ref())? {
                Answer::Value(v) => {
                    answers.insert(field.name.clone(), v);
                }
                Answer::Secret(s) => {
                    secrets.retain(|(k, _)| *k != field.name);
                    secrets.push((field.name.clone(), s));
                }
                Answer::Skip => {
                    answers.remove(&field.name);
                }
            }
        }
        let flags: Vec<FlagValue> = answers
            .iter()
            .map(|(k, v)| FlagValue { field: k.clone(), value: v.clone(), flag: "prompt".into() })
            .collect();
        match validate(&flags) {
            Ok(()) => return Ok(Typed { flags, secrets }),
            // Asking again helps only when the trouble lies in an answer (errors name fields as `name`).
            Err(e) if fields.iter().any(|f| e.to_string().contains(&format!("`{}`", f.name))) => {
                ui.warn(&format!("{e}\nPlease check the answers (Enter keeps each one):"))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Asks for a plain line until it passes `check`; Enter takes `default`.
pub fn ask_line(
    ui: &mut dyn Interaction,
    label: &str,
    default: Option<&str>,
    check: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> Result<String> {
    let prompt = match default {
        Some(d) => format!("{label} [{d}]: "),
        None => format!("{label}: "),
    };
    loop {
        let typed = ui.read_line(&prompt)?.ok_or_else(cancelled)?;
        let typed = typed.trim();
        let answer = match (typed.is_empty(), default) {
            (true, Some(d)) => d,
            (true, None) => {
                ui.warn(&format!("{label} is required"));
                continue;
            }
            (false, _) => typed,
        };
        match check(answer) {
            Ok(v) => return Ok(v),
            Err(reason) => ui.warn(&format!("{reason}; try again")),
        }
    }
}

/// A yes/no question, no by default.
pub fn confirm(ui: &mut dyn Interaction, question: &str) -> Result<bool> {
    let typed = ui.read_line(&format!("{question} [y/N]: "))?.unwrap_or_default();
    Ok(matches!(typed.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_with_a_reason() {
        assert_eq!(check_url("https://gis.example.com/portal/").unwrap(), "https://gis.example.com/portal");
        assert!(check_url("http://127.0.0.1:8080/portal").is_ok());
        assert!(check_url("gis.example.com/portal").unwrap_err().contains("not a URL"));
        assert!(check_url("http://gis.example.com/portal").unwrap_err().contains("in clear"));
        assert!(check_url("ftp://gis.example.com").unwrap_err().contains("not supported"));
        assert!(check_url("https:///portal").unwrap_err().contains("no host"));
    }

    #[test]
    fn verify_ssl_takes_booleans_or_an_existing_pem_file() {
        assert_eq!(check_verify_ssl("TRUE").unwrap(), json!(true));
        assert_eq!(check_verify_ssl("no").unwrap(), json!(false));
        assert!(check_verify_ssl("/nonexistent/ca.pem").unwrap_err().contains("does not exist"));
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("x.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        assert!(check_verify_ssl(not_pem.to_str().unwrap()).unwrap_err().contains("no PEM"));
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n").unwrap();
        assert_eq!(check_verify_ssl(pem.to_str().unwrap()).unwrap(), json!(pem.display().to_string()));
    }

    #[test]
    fn every_provider_declares_a_natural_order_with_short_labels() {
        for provider in crate::registry::providers() {
            let fields = setup_fields(provider);
            let declared: Vec<&SetupField> = fields.iter().filter(|f| f.declared).collect();
            assert!(declared.len() >= 2, "{} declares its set-up fields", provider.name);
            assert!(declared.windows(2).all(|w| w[0].order <= w[1].order));
            // The server comes first, verify_ssl right after it.
            assert_eq!(declared[0].check, Check::Url, "{}: {:?}", provider.name, declared[0].name);
            assert_eq!(declared[1].name, if provider.name == "esri-token" { "server" } else { "verify_ssl" });
            for f in &declared {
                assert!(f.label.len() <= 24 && !f.label.contains('('), "{}: label {:?}", provider.name, f.label);
            }
            for f in fields.iter().filter(|f| f.required) {
                assert!(f.declared, "{}: required field {} has no prompt", provider.name, f.name);
            }
        }
        let oob = setup_fields(crate::registry::find("esri-oob").unwrap());
        let names: Vec<&str> = oob.iter().filter(|f| f.declared).map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["portal", "verify_ssl", "client_id", "client_secret"]);
    }

    /// Answers from a list; records what was said.
    struct Typist {
        answers: Vec<&'static str>,
        said: Vec<String>,
    }

    impl Interaction for Typist {
        fn can_prompt(&self) -> bool {
            true
        }
        fn info(&mut self, m: &str) {
            self.said.push(m.to_string());
        }
        fn warn(&mut self, m: &str) {
            self.said.push(m.to_string());
        }
        fn debug(&mut self, _: u8, _: &str) {}
        fn open_browser(&mut self, _: &str) -> std::result::Result<(), String> {
            Err("no".into())
        }
        fn read_line(&mut self, prompt: &str) -> Result<Option<String>> {
            self.said.push(prompt.to_string());
            Ok((!self.answers.is_empty()).then(|| self.answers.remove(0).to_string()))
        }
        fn read_secret(&mut self, prompt: &str) -> Result<Option<Secret>> {
            self.read_line(prompt).map(|a| a.map(Secret::new))
        }
    }

    #[test]
    fn set_up_asks_again_only_when_an_answer_is_at_fault() {
        let oob = crate::registry::find("esri-oob").unwrap();
        let given = |_: &SetupField| false;
        // An error naming an asked field: asked again, earlier answers kept on Enter.
        let mut ui = Typist { answers: vec!["https://a.example", "", "id", "", "", "", "", ""], said: vec![] };
        let mut calls = 0;
        let typed = run_setup(&mut ui, oob, &given, &mut |_| {
            calls += 1;
            if calls == 1 {
                Err(Error::Config("`client_id` is wrong".into()))
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(calls, 2);
        assert!(ui.said.contains(&"OAuth Client ID [id]: ".to_string()), "{:?}", ui.said);
        assert!(typed.flags.iter().any(|f| f.field == "client_id" && f.value == json!("id")));
        // An error no answer can fix: given back at once, no endless questions.
        let mut ui = Typist { answers: vec!["https://a.example", "", "id", ""], said: vec![] };
        let err = run_setup(&mut ui, oob, &given, &mut |_| Err(Error::Config("`expiration` is wrong".into())));
        assert!(err.is_err());
        // End of input: cancelled, nothing returned.
        let mut ui = Typist { answers: vec!["https://a.example"], said: vec![] };
        let err = run_setup(&mut ui, oob, &given, &mut |_| Ok(())).err().unwrap();
        assert!(err.to_string().contains("nothing was written"));
    }

    #[test]
    fn enums_are_choices() {
        let oidc = setup_fields(crate::registry::find("oidc").unwrap());
        let flow = oidc.iter().find(|f| f.name == "flow").unwrap();
        assert_eq!(flow.check, Check::Choice(vec!["browser".into(), "device".into()]));
        assert_eq!(check(flow, "DEVICE").unwrap(), json!("device"));
        assert!(check(flow, "magic").unwrap_err().contains("browser, device"));
    }
}
