//! Small things a new user meets on the first day: warnings that say what is true.

mod support;
use support::*;

#[test]
fn an_expiry_two_hours_away_is_not_mistaken_for_months() {
    let t = TestVault::new();
    let out = t.run(&["add", "svc/a", "--expires", "2h"], "s");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("the expiry is only 2 h away"), "{err}");
    assert!(!err.contains("month"), "{err}");
    let out = t.run(&["add", "svc/b", "--rotate-every", "12h"], "s");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a rotation period of 12 h is under a day"),
        "{err}"
    );
    assert!(!err.contains("month"), "{err}");
    // Minutes may have been meant as months: the hint names them.
    let out = t.run(&["add", "svc/c", "--rotate-every", "6min"], "s");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("if you meant 6 months, write 6mo"), "{err}");
}
