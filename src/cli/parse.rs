//! Reading the command line. `token`, which scripts run in loops, is read here when it is written in the
//! plain forms scripts use; anything else (help, `--version`, other commands, anything unusual or wrong)
//! goes to clap's whole tree, which the tests below hold this reading to.

use super::args::{Cli, Command, GlobalArgs, TokenArgs, TokenFormat};
use clap::ValueEnum;
use std::ffi::OsString;

/// The parsed command line when it is a `token` command in plain form, else `None`: the caller then
/// parses with [`Cli`]'s whole tree, which also answers help, `--version` and every error. For every
/// command line this accepts, the whole tree gives the same `Cli` (tests below). Building that tree
/// (every command, option and help text) cost `token` as much as all its other work but decryption.
///
/// Plain form: the word `token`; before or after it `--profile`, `--connection`, `--connection-id`
/// (value as the next word or after `=`), `-v`...; after it `token`'s own options. Each option at
/// most once, no two that conflict, values neither empty nor starting with `-`, numbers in digits.
pub fn token_command(args: &[OsString]) -> Option<Cli> {
    let mut words = args.iter().skip(1).map(|a| a.to_str());
    let mut seen: Vec<&str> = Vec::new();
    let mut global = GlobalArgs { profile: None, connection: None, connection_id: None, verbose: 0 };
    let mut token = TokenArgs {
        json: false,
        format: TokenFormat::Token,
        min_ttl: 0,
        force_refresh: false,
        server: None,
        rotate_refresh_token: false,
        portal_selector: None,
    };
    let mut in_token = false;
    // -v before and after `token`: clap keeps the count of the later level, not the sum; left to it.
    let mut verbose_at = [0u8; 2];
    while let Some(word) = words.next() {
        let word = word?;
        if word == "token" && !in_token {
            in_token = true;
            continue;
        }
        let level = &mut verbose_at[usize::from(in_token)];
        if let Some(vs) = word.strip_prefix('-').filter(|v| !v.is_empty() && v.bytes().all(|b| b == b'v')) {
            *level = level.checked_add(u8::try_from(vs.len()).ok()?)?;
            continue;
        }
        if word == "--verbose" {
            *level = level.checked_add(1)?;
            continue;
        }
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (word, None),
        };
        if seen.contains(&name) {
            return None; // given twice: clap decides
        }
        seen.push(name);
        let mut value = || -> Option<String> {
            let value = match inline {
                Some(v) => v,
                None => words.next()??,
            };
            (!value.is_empty() && !value.starts_with('-')).then(|| value.to_string())
        };
        match (name, inline) {
            ("--profile", _) => global.profile = Some(value()?),
            ("--connection", _) => global.connection = Some(value()?),
            ("--connection-id", _) => global.connection_id = Some(value()?),
            ("--json", None) if in_token => token.json = true,
            ("--force-refresh", None) if in_token => token.force_refresh = true,
            ("--rotate-refresh-token", None) if in_token => token.rotate_refresh_token = true,
            ("--format", _) if in_token => token.format = TokenFormat::from_str(&value()?, false).ok()?,
            ("--min-ttl", _) if in_token => {
                // Digits only: clap's own number parsing decides the rest (`+5`, ...).
                let digits = value().filter(|v| v.bytes().all(|b| b.is_ascii_digit()))?;
                token.min_ttl = digits.parse().ok()?;
            }
            ("--server", _) if in_token => token.server = Some(value()?),
            ("--portal", _) if in_token => token.portal_selector = Some(value()?),
            _ => return None,
        }
    }
    global.verbose = match verbose_at {
        [before, 0] => before,
        [0, after] => after,
        _ => return None,
    };
    let given = |name: &str| seen.contains(&name);
    let conflict = (given("--profile") && (given("--connection") || given("--connection-id")))
        || (given("--connection") && given("--connection-id"))
        || (given("--force-refresh") && given("--min-ttl"))
        || (given("--rotate-refresh-token") && (given("--server") || given("--min-ttl")));
    (in_token && !conflict).then_some(Cli { global, command: Command::Token(token) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        std::iter::once("age-oauth").chain(args.iter().copied()).map(OsString::from).collect()
    }

    /// `token_command` accepts `args` only if the whole tree does, with the same result.
    fn agrees(args: &[&str]) -> Option<String> {
        let argv = os(args);
        let fast = token_command(&argv).map(|c| format!("{c:?}"));
        if let Some(fast) = &fast {
            let whole = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{args:?}: whole tree refused: {e}"));
            assert_eq!(fast, &format!("{whole:?}"), "{args:?}");
        }
        fast
    }

    #[test]
    fn the_usual_token_command_lines_are_read_here_and_parse_as_the_whole_tree_does() {
        let usual: &[&[&str]] = &[
            &["token"],
            &["token", "--profile", "prod"],
            &["token", "--profile=prod"],
            &["--profile", "prod", "token"],
            &["-v", "token", "--profile", "prod", "--json"],
            &["token", "-vv", "--format", "header"],
            &["token", "--format=env", "--min-ttl", "600"],
            &["token", "--json", "--min-ttl=60", "--connection", "ab12"],
            &["token", "--force-refresh", "--connection-id", "x"],
            &["token", "--server", "https://gis.example.com/arcgis"],
            &["token", "--rotate-refresh-token", "--profile", "p"],
            &["token", "--portal", "https://gis.example.com/portal"],
            &["--verbose", "--verbose", "token"],
            &["--profile", "token", "token"],
        ];
        for args in usual {
            assert!(agrees(args).is_some(), "{args:?} should be read here");
        }
        let cli = token_command(&os(&["token", "--profile", "prod", "--min-ttl", "5"])).unwrap();
        assert_eq!(cli.global.profile.as_deref(), Some("prod"));
        assert!(matches!(cli.command, Command::Token(TokenArgs { min_ttl: 5, .. })));
    }

    #[test]
    fn help_version_errors_and_other_commands_are_left_to_the_whole_tree() {
        let others: &[&[&str]] = &[
            &["--version"],
            &["-V"],
            &["token", "--help"],
            &["token", "-h"],
            &["help", "token"],
            &["token", "help"],
            &["token", "--bogus"],
            &["token", "--profile"],
            &["token", "--profile", "a", "--connection", "b"],
            &["token", "--connection", "a", "--connection-id", "b"],
            &["token", "--min-ttl", "1", "--force-refresh"],
            &["token", "--rotate-refresh-token", "--server", "https://x.example"],
            &["token", "--format", "nope"],
            &["token", "--min-ttl", "-1"],
            &["token", "--profile", "a", "--profile", "b"],
            &["token", "extra"],
            &["token", "token"],
            &["token", "--profile", ""],
            &["token", "--profile="],
            &["token", "--profile", "-v"],
            &["token", "--min-ttl", "+5"],
            &["token", "--json=true"],
            &["--json", "token"],
            &["token", "--", "--json"],
            &["token", "-vx"],
            &["-v", "token", "-v"],
            &["profile", "show", "token"],
            &["whoami", "--profile", "token"],
            &["login", "token"],
            &[],
        ];
        for args in others {
            assert!(agrees(args).is_none(), "{args:?} should be left to the whole tree");
        }
    }

    #[rustfmt::skip]
    const WORDS: &[&str] = &[
        "token", "--profile", "--profile=p", "p", "--connection", "--connection-id", "c", "-v", "-vv", "--verbose",
        "--json", "--format", "json", "env", "header", "--format=token", "--min-ttl", "0", "600", "-1", "--min-ttl=7",
        "--force-refresh", "--server", "https://s.example/arcgis", "--rotate-refresh-token", "--portal", "--help", "-h",
        "--version", "-V", "help", "login", "whoami", "--", "", "--bogus", "-x", "=", "--profile=", "-", "-vx",
        "--json=1", "--format=header", "--min-ttl=+5", "007", "99999999999999999999", "--portal=a=b", "--server=",
    ];

    /// Options as scripts write them, each with a value where it takes one.
    #[rustfmt::skip]
    const OPTIONS: &[&[&str]] = &[
        &["--profile", "prod"], &["--profile=prod"], &["--connection", "ab"], &["--connection-id=x"], &["-v"],
        &["-vvv"], &["--verbose"], &["--json"], &["--format", "env"], &["--format=json"], &["--format", "header"],
        &["--min-ttl", "600"], &["--min-ttl=0"], &["--force-refresh"], &["--server", "https://s.example/arcgis"],
        &["--rotate-refresh-token"], &["--portal", "p1"], &["--portal=https://gis.example.com/portal"],
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        // Any mix of the words above: whenever `token_command` accepts, the whole tree gives the same `Cli`.
        #[test]
        fn any_mix_of_words_read_here_parses_the_same_through_the_whole_tree(
            picks in proptest::collection::vec(0..WORDS.len(), 0..7)
        ) {
            let args: Vec<&str> = picks.into_iter().map(|i| WORDS[i]).collect();
            agrees(&args);
        }

        // Well-formed options in any order and combination, `token` anywhere among them: read here
        // exactly when the whole tree accepts the line, and then the same.
        #[test]
        fn options_in_any_order_are_read_here_when_the_whole_tree_accepts_them_and_never_when_they_conflict(
            picks in proptest::collection::vec(0..OPTIONS.len(), 0..6),
            at in 0usize..7,
        ) {
            let mut args: Vec<&str> = picks.iter().flat_map(|&i| OPTIONS[i].iter().copied()).collect();
            let words_before = picks.iter().take(at).map(|&i| OPTIONS[i].len()).sum::<usize>();
            args.insert(words_before.min(args.len()), "token");
            let whole_accepts = Cli::try_parse_from(os(&args)).is_ok();
            let read_here = agrees(&args).is_some();
            // Left to the whole tree: an option other than -v given twice, and options that conflict
            // (clap checks conflicts per command level, so it lets some through when given on both sides of `token`).
            let key = |i: usize| OPTIONS[i][0].split('=').next().unwrap_or_default();
            let verbose = |k: &str| k.starts_with("-v") || k == "--verbose";
            let repeats = (1..picks.len()).any(|n| !verbose(key(picks[n])) && picks[..n].iter().any(|&m| key(m) == key(picks[n])));
            let has = |k: &str| picks.iter().any(|&i| key(i) == k);
            let conflicting = (has("--profile") && (has("--connection") || has("--connection-id")))
                || (has("--connection") && has("--connection-id"))
                || (has("--force-refresh") && has("--min-ttl"))
                || (has("--rotate-refresh-token") && (has("--server") || has("--min-ttl")));
            prop_assert!(!read_here || !conflicting, "{:?}", args);
            // -v on both sides of `token` is left to clap as well (it keeps the later count).
            let verbose_both_sides = picks.iter().take(at).any(|&i| verbose(key(i)))
                && picks.iter().skip(at).any(|&i| verbose(key(i)));
            if !repeats && !conflicting && !verbose_both_sides {
                prop_assert_eq!(read_here, whole_accepts, "{:?}", args);
            }
        }
    }
}
