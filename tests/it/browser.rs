//! The office's intake form in a real browser (headless Chromium driven over WebDriver by
//! chromedriver): log in, submit with a wrong date, see the error beside the field with
//! everything typed kept, correct it, and land on the registered application.

use crate::common::*;
use kofu::service::users::Role;
use serde_json::json;

#[test]
fn intake_form_in_headless_chromium() {
    let env = envs().remove(0);
    ready_user(&env, "office-browser", Role::Office, None);
    let (url, server) = serve(state(&env));
    let d = Driver::start();

    d.go(&format!("{url}/login"));
    d.type_into("#username", "office-browser");
    d.type_into("#password", "a long enough password");
    d.submit("button[type=submit]");
    d.go(&format!("{url}/applications/new"));
    assert!(d.text("h1").contains("申請の受付"));

    d.type_into("#name", "髙橋 一郎");
    d.type_into("#name_kana", "ﾀｶﾊｼ ｲﾁﾛｳ");
    d.type_into("#birth_date", "平成31年5月1日");
    d.click("input[name=sex][value=male]");
    d.type_into("#postal_code", "〒100-0005");
    d.type_into("#address", "東京都千代田区丸の内一丁目2番3号");
    d.type_into("#municipality_code", "131016");
    d.click("input[name=form_application]");
    d.click("input[name=form_power_of_attorney]");
    d.click("input[name=form_consent]");
    d.submit("#intake button[type=submit]");

    // The wrong date is named beside its field; everything typed is still there. (The lookup
    // waits for the page; if it never comes, the check below says what happened instead.)
    d.send(
        "POST",
        &d.s("/element"),
        Some(json!({"using": "css selector", "value": "#err-birth_date"})),
    );
    let source = d.send("GET", &d.s("/source"), None)["value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if !source.contains("err-birth_date") {
        let entries = kofu::audit::list(&mut env.conn(), None, 50).unwrap();
        let log: Vec<String> = entries
            .iter()
            .map(|e| format!("{} {} {} {}", e.actor, e.action, e.target, e.detail))
            .collect();
        panic!("not back on the form; audit: {log:#?}");
    }
    let err = d.text("#err-birth_date");
    assert!(
        err.contains("令和元年5月1日"),
        "error beside the field: {err:?}"
    );
    assert_eq!(d.text("#err-name"), "");
    assert_eq!(d.value("#name"), "髙橋 一郎");
    assert_eq!(d.value("#name_kana"), "ﾀｶﾊｼ ｲﾁﾛｳ");
    assert_eq!(d.value("#address"), "東京都千代田区丸の内一丁目2番3号");
    d.screenshot(&env.path("intake-error.png"));

    d.type_into("#birth_date", "S35.10.10");
    d.submit("#intake button[type=submit]");
    let status = d.text("p[role=status]");
    assert!(status.contains("申請を登録しました"), "{status:?}");
    assert_eq!(d.text("#state"), "照合待ち");
    let page = d.send("GET", &d.s("/source"), None)["value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        page.contains("昭和35年10月10日")
            && page.contains("タカハシ\u{3000}イチロウ")
            && page.contains("〒100-0005"),
        "shown back in era form"
    );
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("intake-registered.png");
    d.screenshot(&shot);
    drop(d);
    actix_web::rt::System::new().block_on(server.stop(true));
}
