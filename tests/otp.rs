//! One-time codes: `add --totp` reads a seed from stdin, `otp` prints the code of the moment,
//! and seeds migrated from KeePassXC and Bitwarden give codes too.

mod support;
use jeton::otp::Totp;
use support::*;

/// base32 of RFC 6238's SHA-1 seed, "12345678901234567890".
const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs `jeton otp ARGS` and checks the code against the seed's, at the time before or after
/// the run (a period may end in between).
fn assert_code(t: &TestVault, args: &[&str], seed: &str) {
    let totp = Totp::parse(seed).unwrap();
    let before = totp.code_at(now());
    let out = t.ok(&[&["otp"][..], args].concat(), "");
    let after = totp.code_at(now());
    let code = out.trim_end();
    assert!(
        code == before || code == after,
        "{code} vs {before}/{after}"
    );
    assert_eq!(code.len(), totp.digits as usize);
}

#[test]
fn add_totp_reads_the_seed_from_stdin_and_otp_prints_the_code() {
    let t = TestVault::new();
    t.ok(
        &["add", "github/2fa", "--totp"],
        "gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n",
    );
    assert_code(&t, &["github/2fa"], SEED);
    // The seed is kept as an otpauth URI: usable by any authenticator.
    assert_eq!(
        t.ok(&["get", "github/2fa"], ""),
        format!("otpauth://totp/github%2F2fa?secret={SEED}\n")
    );
    let out = t.ok(&["otp", "-n", "github/2fa"], "");
    assert!(!out.ends_with('\n') && out.len() == 6, "{out:?}");
}

#[test]
fn an_otpauth_uri_keeps_its_algorithm_digits_and_period() {
    let t = TestVault::new();
    let uri = "otpauth://totp/ACME:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA&issuer=ACME&algorithm=SHA256&digits=8&period=60";
    t.ok(&["add", "acme/alice", "--totp"], uri);
    assert_eq!(t.ok(&["get", "acme/alice"], ""), format!("{uri}\n"));
    assert_code(&t, &["acme/alice"], uri);
    let v: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "otp", "acme/alice"], "")).unwrap();
    assert_eq!(v["name"], "acme/alice");
    assert_eq!(v["period"], 60);
    assert_eq!(v["code"].as_str().unwrap().len(), 8);
    let left = v["remaining"].as_u64().unwrap();
    assert!((1..=60).contains(&left), "{v}");
}

#[test]
fn a_bad_seed_is_refused_before_anything_is_written() {
    let t = TestVault::new();
    let before = t.vault_bytes();
    for bad in [
        "not a seed!",
        "otpauth://hotp/x?secret=GEZDGNBVGEZDGNBV&counter=3",
        "otpauth://totp/x?digits=6",
    ] {
        let err = t.fails(&["add", "x", "--totp"], bad, 2);
        assert!(err.contains("not a one-time code seed"), "{err}");
        assert!(!err.contains("GEZDGNBVG"), "no seed in errors: {err}");
    }
    t.fails(&["add", "x", "--totp", "--generate"], "", 2);
    assert_eq!(t.vault_bytes(), before);
}

#[test]
fn otp_refuses_entries_without_a_seed_disabled_ones_and_unknown_names() {
    let t = TestVault::new();
    t.add("svc/token", "ghp_not-a-seed", &[]);
    let err = t.fails(&["otp", "svc/token"], "", 2);
    assert!(err.contains("holds no one-time code seed"), "{err}");
    assert!(err.contains("jeton add svc/token/otp --totp"), "{err}");
    t.ok(&["add", "svc/2fa", "--totp"], SEED);
    t.ok(&["disable", "svc/2fa"], "");
    t.fails(&["otp", "svc/2fa"], "", 5);
    let err = t.fails(&["otp", "svc/2fx"], "", 4);
    assert!(err.contains("did you mean 'svc/2fa'?"), "{err}");
}

#[test]
fn migrated_bitwarden_and_keepassxc_seeds_give_codes() {
    let t = TestVault::new();
    let uri = format!("otpauth://totp/GitHub:octo?secret={SEED}&issuer=GitHub");
    let json = serde_json::json!({
        "encrypted": false,
        "items": [
            {"id": "i1", "type": 1, "name": "GitHub",
             "login": {"username": "octo", "password": "pw", "totp": uri}},
            {"id": "i2", "type": 1, "name": "npm",
             "login": {"password": "abcdefghabcdefgh", "totp": "gezd gnbv gy3t qojq gezd gnbv gy3t qojq"}},
        ]
    });
    let path = t.home().join("bw.json");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    t.ok(&["migrate", "bitwarden", &path.to_string_lossy()], "");
    assert_code(&t, &["GitHub/totp"], SEED);
    // The login's own name finds the seed beside it, even when the password looks like base32.
    assert_code(&t, &["GitHub"], SEED);
    assert_code(&t, &["npm"], SEED);

    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<KeePassFile><Root><Group><Name>Root</Name>
<Entry><UUID>AAAAAAAAAAAAAAAAAAAAAg==</UUID>
<String><Key>Title</Key><Value>Cloud</Value></String>
<String><Key>Password</Key><Value ProtectInMemory="True">pw</Value></String>
<String><Key>otp</Key><Value>otpauth://totp/Cloud?secret={SEED}&amp;period=30&amp;digits=6</Value></String>
</Entry></Group></Root></KeePassFile>
"#
    );
    let path = t.home().join("kp.xml");
    std::fs::write(&path, xml).unwrap();
    t.ok(
        &[
            "migrate",
            "keepassxc",
            &path.to_string_lossy(),
            "--prefix",
            "kp",
        ],
        "",
    );
    assert_code(&t, &["kp/Cloud"], SEED);
    let note = t.ok(&["show", "kp/Cloud"], "");
    assert!(
        !note.contains(SEED),
        "the seed is not left in the note: {note}"
    );
}

#[test]
fn a_keepassxc_legacy_totp_seed_keeps_its_period_and_digits() {
    let t = TestVault::new();
    let entry = |title: &str, settings: &str| {
        format!(
            r#"<Entry><UUID>{title}AAAAAAAAAAAAAAAAAAA==</UUID>
<String><Key>Title</Key><Value>{title}</Value></String>
<String><Key>Password</Key><Value ProtectInMemory="True">pw</Value></String>
<String><Key>TOTP Seed</Key><Value ProtectInMemory="True">{SEED}</Value></String>
{settings}
</Entry>"#
        )
    };
    let settings = |v: &str| format!("<String><Key>TOTP Settings</Key><Value>{v}</Value></String>");
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<KeePassFile><Root><Group><Name>Root</Name>
{}{}{}{}
</Group></Root></KeePassFile>
"#,
        entry("Eight", &settings("30;8")),
        entry("Minute", &settings("60;7")),
        entry("Plain", ""),
        entry("Steam", &settings("30;S")),
    );
    let path = t.home().join("legacy.xml");
    std::fs::write(&path, xml).unwrap();
    let report = t.ok(&["migrate", "keepassxc", &path.to_string_lossy()], "");
    assert!(
        report.contains("Steam (TOTP Seed)") && report.contains("Steam"),
        "{report}"
    );
    let eight = format!("otpauth://totp/x?secret={SEED}&digits=8");
    assert_code(&t, &["Eight"], &eight);
    assert_code(&t, &["Eight/otp"], &eight);
    assert_code(
        &t,
        &["Minute"],
        &format!("otpauth://totp/x?secret={SEED}&digits=7&period=60"),
    );
    assert_code(&t, &["Plain"], SEED);
    t.fails(&["get", "Steam/otp"], "", 4);
    // The settings are not left in the note, nor the seed.
    let shown = t.ok(&["show", "Eight"], "");
    assert!(
        !shown.contains("TOTP Settings") && !shown.contains(SEED),
        "{shown}"
    );
}

#[test]
fn add_totp_on_a_terminal_asks_for_a_seed_by_name() {
    let t = TestVault::new();
    let (code, text) = on_tty(
        &t,
        &[("as the site shows it): ", SEED), ("(again): ", SEED)],
        &["add", "svc/2fa", "--totp"],
        true,
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("one-time code seed (otpauth://totp/... URI"),
        "the prompt does not say what it wants: {text}"
    );
    assert!(!text.contains(SEED), "the seed was echoed: {text}");
    assert_code(&t, &["svc/2fa"], SEED);
}
