//! Text that reaches a terminal or a log: passwords embedded in URLs (`user:pass@host`) are
//! replaced, and terminal control sequences from servers or callbacks are made harmless.

/// A URL with the password of its user info (`scheme://user:pass@host`) replaced by `***`.
pub fn url(url: &str) -> String {
    text(url)
}

/// Every `scheme://user:pass@` in `text` with the password replaced by `***`.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail.find(|c: char| "/?#".contains(c) || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `text` without terminal control sequences: C0 controls (but newline and tab), DEL and C1
/// controls are shown as `\u{..}` escapes, so a server's answer cannot move the cursor, retitle
/// the terminal or hide what follows.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let control = (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c);
        if control {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Both: what every line age-oauth prints on stderr goes through.
pub fn for_terminal(message: &str) -> String {
    printable(&text(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_replaced() {
        assert_eq!(url("https://me:hunter2@gis.example.com/portal"), "https://me:***@gis.example.com/portal");
        assert_eq!(url("https://gis.example.com/portal"), "https://gis.example.com/portal");
        assert_eq!(url("https://me@gis.example.com/a:b@c"), "https://me@gis.example.com/a:b@c");
        assert_eq!(
            text("cannot reach http://a:b@127.0.0.1:9/x and https://c:d@e.example"),
            "cannot reach http://a:***@127.0.0.1:9/x and https://c:***@e.example"
        );
        assert_eq!(text("p: `portal` is x://u:p@h"), "p: `portal` is x://u:***@h");
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(printable("ok\x1b[2Jbad\u{9b}31m\r"), "ok\\u{1b}[2Jbad\\u{9b}31m\\u{d}");
        assert_eq!(printable("two\nlines\tand tab é"), "two\nlines\tand tab é");
    }
}
