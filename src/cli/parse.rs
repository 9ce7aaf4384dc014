//! Reading the command line. `token`, which scripts run in loops, is parsed by a clap command made of
//! the global options and `token`'s own (the same definitions as the whole tree); anything else, and
//! anything that grammar refuses (help, typos, conflicts), is left to clap's whole tree.

use super::args::{Cli, Command, GlobalArgs, TokenArgs};
use clap::{Args, FromArgMatches};
use std::ffi::OsString;

/// The parsed command line when it is a `token` command that parses, else `None`: the caller then
/// parses with [`Cli`]'s whole tree, which also answers help, `--version` and errors. For every
/// command line this accepts, the whole tree gives the same `Cli` (tests below): building the whole
/// tree (every command, option and help text) is most of what `token` costs besides the decryption.
pub fn token_command(args: &[OsString]) -> Option<Cli> {
    // Cheap first test: other commands never pay for building the small grammar.
    if !args.iter().skip(1).any(|a| a == "token") {
        return None;
    }
    let grammar = GlobalArgs::augment_args(clap::Command::new("age-oauth"))
        .subcommand(TokenArgs::augment_args(clap::Command::new("token")).disable_help_flag(true))
        .subcommand_required(true)
        .disable_help_flag(true)
        .disable_help_subcommand(true);
    let matches = grammar.try_get_matches_from(args).ok()?;
    let Some(("token", token)) = matches.subcommand() else {
        return None;
    };
    let cli = Cli {
        global: GlobalArgs::from_arg_matches(&matches).ok()?,
        command: Command::Token(TokenArgs::from_arg_matches(token).ok()?),
    };
    // As in `main`: the process ends soon; tearing the matches down would only cost time.
    std::mem::forget(matches);
    Some(cli)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        std::iter::once("age-oauth").chain(args.iter().copied()).map(OsString::from).collect()
    }

    /// The small grammar accepts `args` only if the whole tree does, with the same result.
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
    fn the_usual_token_command_lines_take_the_small_grammar_and_parse_as_the_whole_tree_does() {
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
            assert!(agrees(args).is_some(), "{args:?} should take the small grammar");
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
            &["profile", "show", "token"],
            &["whoami", "--profile", "token"],
            &["login", "token"],
            &[],
        ];
        for args in others {
            assert!(agrees(args).is_none(), "{args:?} should be left to the whole tree");
        }
    }

    const WORDS: &[&str] = &[
        "token", "--profile", "--profile=p", "p", "--connection", "--connection-id", "c", "-v", "-vv", "--verbose",
        "--json", "--format", "json", "env", "header", "--format=token", "--min-ttl", "0", "600", "-1", "--min-ttl=7",
        "--force-refresh", "--server", "https://s.example/arcgis", "--rotate-refresh-token", "--portal", "--help", "-h",
        "--version", "-V", "help", "login", "whoami", "--", "", "--bogus", "-x", "=", "--profile=",
    ];

    proptest! {
        // Any mix of the words above: whenever the small grammar accepts, the whole tree gives the same `Cli`.
        #[test]
        fn any_command_line_the_small_grammar_accepts_parses_the_same_through_the_whole_tree(
            picks in proptest::collection::vec(0..WORDS.len(), 0..7)
        ) {
            let args: Vec<&str> = picks.into_iter().map(|i| WORDS[i]).collect();
            agrees(&args);
        }
    }
}
