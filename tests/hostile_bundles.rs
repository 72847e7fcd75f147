//! An age file whose header is built to be slow to parse (age's header parser is quadratic in
//! the number of stanzas) is refused before age reads it: `import` and `backup verify`, binary
//! and armored.

#[path = "support/hostile.rs"]
mod hostile;
mod support;
use hostile::hostile_age_file;
use support::*;

#[test]
fn a_bundle_with_a_huge_age_header_is_refused_before_age_parses_it() {
    let t = TestVault::new();
    for armor in [false, true] {
        for (n, why) in [(8000, "longer than 16 KiB"), (100, "100 recipient stanzas")] {
            let file = t.home().join("hostile.age");
            std::fs::write(&file, hostile_age_file(n, armor)).unwrap();
            let err = t.fails(&["import", file.to_str().unwrap()], "", 6);
            assert!(err.contains(why), "armor {armor}, {n} stanzas: {err}");
            assert!(err.contains("nothing was imported"), "{err}");
        }
    }
}

#[test]
fn a_backup_export_with_a_huge_age_header_is_refused_before_age_parses_it() {
    let t = TestVault::new();
    let id = age::x25519::Identity::generate();
    let key = t.home().join("key.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
    }
    for armor in [false, true] {
        let file = t.home().join("export.age");
        std::fs::write(&file, hostile_age_file(8000, armor)).unwrap();
        let err = t.fails(
            &[
                "backup",
                "verify",
                file.to_str().unwrap(),
                "--identity",
                key.to_str().unwrap(),
            ],
            "",
            6,
        );
        assert!(err.contains("age header"), "armor {armor}: {err}");
    }
}
