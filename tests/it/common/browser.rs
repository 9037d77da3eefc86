//! A real browser for page tests: headless Chromium driven over WebDriver by chromedriver,
//! and a staff app served on a loopback port for it.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session of headless Chromium.
pub struct Driver {
    child: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Driver {
    pub fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (scripts/setup installs chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            agent,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1100,1600", "--lang=ja"]}}}});
        let v = d.send("POST", "/session", Some(caps));
        d.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        // Element lookups wait up to 10 s for the element: a click that submits a form
        // returns before the next page is there (seen failing on a loaded machine).
        d.send("POST", &d.s("/timeouts"), Some(json!({"implicit": 10_000})));
        d
    }

    pub fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.base, path);
        let mut resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, Some(b)) => self.agent.post(&url).send_json(&b),
            (_, None) => self.agent.post(&url).send_json(json!({})),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        resp.body_mut().read_json::<Value>().unwrap()
    }

    pub fn s(&self, p: &str) -> String {
        format!("/session/{}{p}", self.session)
    }

    pub fn go(&self, url: &str) {
        self.send("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.send(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v["value"][ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.send("POST", &self.s(&format!("/element/{e}/clear")), None);
        self.send(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.send("POST", &self.s(&format!("/element/{e}/click")), None);
    }

    /// Click a control that submits a form, and wait until the browser has left the page
    /// (its root element goes stale): clicking returns before the next page is there, and
    /// the old page's elements would otherwise answer the next lookups (seen in CI: the
    /// login form still loading when the test went on).
    pub fn submit(&self, css: &str) {
        let root = self.find("html");
        self.click(css);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.send("GET", &self.s(&format!("/element/{root}/name")), None);
            if v["value"].get("error").is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "submitting {css} did not lead to another page"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.send("GET", &self.s(&format!("/element/{e}/text")), None)["value"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn value(&self, css: &str) -> String {
        let e = self.find(css);
        self.send(
            "GET",
            &self.s(&format!("/element/{e}/property/value")),
            None,
        )["value"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn screenshot(&self, path: &std::path::Path) {
        use std::io::Write;
        let v = self.send("GET", &self.s("/screenshot"), None);
        let png = openssl::base64::decode_block(v["value"].as_str().unwrap()).unwrap();
        std::fs::File::create(path)
            .unwrap()
            .write_all(&png)
            .unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serve `state` on a free loopback port in a thread; returns the base URL and a stopper.
pub fn serve(st: kofu::app::AppState) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || kofu::http::app(st.clone()))
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
            tx.send(server.handle()).unwrap();
            server.await.unwrap();
        })
    });
    (url, rx.recv().unwrap())
}
