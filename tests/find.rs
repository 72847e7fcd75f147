//! Finding entries: `search`, `list PATTERN`, and the names suggested for a name not found.

mod support;
use support::*;

fn vault_with_entries() -> TestVault {
    let t = TestVault::new();
    t.add(
        "github/ci-deploy",
        "s1",
        &["--url", "https://github.com", "--username", "deploy-bot"],
    );
    t.add("github/work", "s2", &["--tag", "laptop"]);
    t.add("gitlab/work", "s3", &["--scope", "read_registry"]);
    t.add(
        "npm/publish",
        "s4",
        &["--note", "Publishes the Acme packages"],
    );
    t
}

fn names(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn search_is_fuzzy_and_case_insensitive() {
    let t = vault_with_entries();
    let found = names(&t.ok(&["search", "ghub", "--json"], ""));
    assert!(found.contains(&"github/ci-deploy".to_owned()), "{found:?}");
    assert!(!found.contains(&"npm/publish".to_owned()), "{found:?}");
    assert_eq!(
        names(&t.ok(&["search", "ACME", "--json"], "")),
        ["npm/publish"]
    );
}

#[test]
fn search_looks_in_url_username_tags_scopes_and_note() {
    let t = vault_with_entries();
    for (term, field, name) in [
        ("deploy-bot", "username", "github/ci-deploy"),
        ("github.com", "url", "github/ci-deploy"),
        ("laptop", "tags", "github/work"),
        ("read_registry", "scopes", "gitlab/work"),
        ("packages", "note", "npm/publish"),
    ] {
        let v: serde_json::Value =
            serde_json::from_str(&t.ok(&["--json", "search", term], "")).unwrap();
        assert_eq!(v[0]["name"], name, "{term}: {v}");
        assert!(
            v[0]["matched"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == field),
            "{term}: {v}"
        );
    }
    let text = t.ok(&["search", "laptop"], "");
    assert!(
        text.starts_with("NAME") && text.contains("github/work"),
        "{text}"
    );
    assert!(!text.contains("s2"), "never a secret: {text}");
}

#[test]
fn every_word_of_a_term_must_match_somewhere() {
    let t = vault_with_entries();
    assert_eq!(
        names(&t.ok(&["search", "--json", "github deploy"], "")),
        ["github/ci-deploy"]
    );
    assert_eq!(
        names(&t.ok(&["search", "--json", "work laptop"], "")),
        ["github/work"]
    );
    assert!(names(&t.ok(&["search", "--json", "github zzzz"], "")).is_empty());
}

#[test]
fn search_puts_the_best_match_first() {
    let t = vault_with_entries();
    let found = names(&t.ok(&["search", "work", "--json"], ""));
    assert_eq!(found[..2], ["github/work", "gitlab/work"], "{found:?}");
    assert_eq!(
        names(&t.ok(&["search", "github/work", "--json"], ""))[0],
        "github/work"
    );
}

#[test]
fn search_finds_nothing_quietly_and_refuses_an_empty_term() {
    let t = vault_with_entries();
    let out = t.run(&["search", "zzzz"], "");
    assert!(out.status.success() && out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, "jeton: no entries match\n");
    let out = t.run(&["-q", "search", "zzzz"], "");
    assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(t.ok(&["search", "zzzz", "--json"], ""), "[]\n");
    t.fails(&["search", " "], "", 2);
    t.fails(&["search"], "", 2);
}

#[test]
fn search_takes_several_words_without_quotes_and_all_must_match() {
    let t = vault_with_entries();
    assert_eq!(
        names(&t.ok(&["search", "--json", "github", "deploy"], "")),
        ["github/ci-deploy"]
    );
    assert_eq!(
        names(&t.ok(&["search", "work", "laptop", "--json"], "")),
        ["github/work"]
    );
    assert!(names(&t.ok(&["search", "--json", "github", "zzzz"], "")).is_empty());
    let text = t.ok(&["search", "github", "deploy"], "");
    assert!(
        text.contains("github/ci-deploy") && !text.contains("github/work"),
        "{text}"
    );
}

#[test]
fn a_match_in_the_name_ranks_above_a_match_in_a_tag() {
    let t = TestVault::new();
    // The tag is "deploy" exactly; the name only holds it inside a longer word.
    t.add("acme/tool", "s1", &["--tag", "deploy"]);
    t.add("acme/autodeployer", "s2", &[]);
    t.add("acme/other", "s3", &["--note", "deploy by hand"]);
    let found = names(&t.ok(&["search", "deploy", "--json"], ""));
    assert_eq!(found, ["acme/autodeployer", "acme/tool", "acme/other"]);
    // With several words: the more of them the name holds, the higher.
    t.add("ops/deploy-key", "s4", &["--tag", "acme"]);
    let found = names(&t.ok(&["search", "acme", "deploy", "--json"], ""));
    assert_eq!(found[0], "acme/autodeployer", "{found:?}");
}

#[test]
fn nothing_found_in_an_empty_vault_says_the_vault_is_empty() {
    let t = TestVault::new();
    for args in [&["list"][..], &["search", "github"], &["list", "gh"]] {
        let out = t.run(args, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && out.stdout.is_empty(), "{args:?}");
        assert!(
            err.contains("the vault is empty") && err.contains("jeton add"),
            "{args:?}: {err}"
        );
    }
    t.add("svc/a", "s", &[]);
    let out = t.run(&["list", "zzz"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "jeton: no entries match\n"
    );
    // Only revoked entries left: not empty, nothing active matches.
    t.ok(&["revoke", "svc/a", "--yes"], "");
    let out = t.run(&["list"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "jeton: no entries match\n"
    );
}

#[test]
fn list_pattern_matches_anywhere_in_the_name() {
    let t = vault_with_entries();
    let list = t.ok(&["list", "WORK"], "");
    assert!(
        list.contains("github/work") && list.contains("gitlab/work"),
        "{list}"
    );
    assert!(
        !list.contains("npm/publish") && !list.contains("ci-deploy"),
        "{list}"
    );
    let list = t.ok(&["list", "github/"], "");
    assert!(
        list.contains("github/work") && !list.contains("gitlab"),
        "{list}"
    );
}

#[test]
fn a_name_not_found_suggests_the_closest_names() {
    let t = vault_with_entries();
    let err = t.fails(&["get", "github/wrok"], "", 4);
    assert!(
        err.contains("no entry named 'github/wrok'; did you mean 'github/work'?"),
        "{err}"
    );
    let err = t.fails(&["show", "ci-deploy"], "", 4);
    assert!(err.contains("did you mean 'github/ci-deploy'?"), "{err}");
    for cmd in [
        &["rm", "--yes", "npm/publsh"][..],
        &["edit", "npm/publsh", "--note", "x"],
        &["rotate", "npm/publsh", "--generate"],
    ] {
        let err = t.fails(cmd, "", 4);
        assert!(
            err.contains("did you mean 'npm/publish'?"),
            "{cmd:?}: {err}"
        );
    }
    let err = t.fails(&["get", "aws/prod"], "", 4);
    assert!(
        err.contains("no entry named 'aws/prod'") && !err.contains("did you mean"),
        "{err}"
    );
}

#[test]
fn a_folder_name_says_how_many_entries_it_holds() {
    let t = vault_with_entries();
    let err = t.fails(&["get", "github"], "", 4);
    assert!(
        err.contains("'github' is a folder holding 2 entries"),
        "{err}"
    );
    assert!(err.contains("jeton list github/"), "{err}");
    let err = t.fails(&["get", "npm/"], "", 4);
    assert!(err.contains("'npm/' is a folder holding 1 entry,"), "{err}");
}
