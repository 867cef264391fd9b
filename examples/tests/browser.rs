//! The customer's whole path in a real headless Chromium, driven over
//! WebDriver: the public page, a Stripe Checkout payment on the stand-in
//! page (the real adapter against provider-stripe's fake API), the signed
//! webhook, the gone link, and the workspace after sign-in.
//!
//! It needs Debian's `chromium` and `chromium-driver` packages (`.ci/run`
//! installs them). Without them the test fails and says so; it never skips.
//! Screenshots go to `test-output/browser/` in the workspace root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use billing_domain::InvoiceStatus;
use billing_examples::server::launch::launch;
use billing_examples::server::settings::Settings;
use fantoccini::{Client, ClientBuilder, Locator};
use support::PRIVATE_TEXTS;
use tokio::net::TcpListener;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to show what the test waits for.
const WAIT: Duration = Duration::from_secs(10);

/// Chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    process: Child,
    url: String,
    _profile: TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_driver() -> (Driver, Client) {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(binary).exists(),
            "{binary} is missing: install Debian's `chromium` and `chromium-driver` packages \
             (apt-get install -y chromium chromium-driver; .ci/run does this)"
        );
    }
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let process = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {CHROMEDRIVER}: {error}"));
    let profile = TempDir(std::env::temp_dir().join(format!("billing-browser-test-{port}")));
    let driver = Driver { process, url: format!("http://127.0.0.1:{port}"), _profile: profile };

    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1000,900", "--lang=en-US",
                format!("--user-data-dir={}", driver._profile.0.display()),
            ],
        }),
    );
    let mut last_error = String::new();
    for _ in 0..50 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(error) => last_error = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver at {} did not start a Chromium session: {last_error}", driver.url);
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test-output/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

async fn visible_text(client: &Client) -> String {
    client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
}

/// Starts the server exactly as the binary does with no provider keys:
/// providers without keys run against their local stand-ins.
#[tokio::test]
async fn customer_pays_then_sees_details() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = Settings::read(Vec::<String>::new(), |_| None).unwrap();
    let launched = launch(&settings, &listener).await.unwrap();
    let seed = launched.seed.clone();
    let _server = launched.app.spawn(listener).unwrap();
    let (_driver, client) = start_driver().await;

    // The public page: amount, status and hint; nothing private.
    client.goto(&seed.public_url).await.unwrap();
    let public = visible_text(&client).await;
    screenshot(&client, "01-public-page.png").await;
    assert!(public.contains("EUR 49.90"), "{public}");
    assert!(public.contains("Awaiting payment"), "{public}");
    assert!(public.contains("Sign in to the workspace to see the details."), "{public}");
    let source = client.source().await.unwrap();
    for private in PRIVATE_TEXTS {
        assert!(!public.contains(private), "public page shows {private:?}");
        assert!(!source.contains(private), "public page source contains {private:?}");
    }

    // Pay with Stripe on the stand-in page, which delivers the signed
    // `checkout.session.completed` to the webhook route.
    client.find(Locator::Css("#pay button[value='stripe']")).await.unwrap().click().await.unwrap();
    let notice = client.wait().at_most(WAIT).for_element(Locator::Id("stand-in-notice")).await.unwrap();
    let checkout = notice.text().await.unwrap();
    let amount = client.find(Locator::Id("stand-in-amount")).await.unwrap().text().await.unwrap();
    screenshot(&client, "02-stand-in-checkout.png").await;
    assert!(checkout.contains("Local stand-in for Stripe"), "{checkout}");
    assert_eq!(amount, "EUR 49.90");
    client.find(Locator::Id("stand-in-pay")).await.unwrap().click().await.unwrap();
    client.wait().at_most(WAIT).for_element(Locator::XPath("//h1[text()='Payment']")).await.unwrap();
    let returned = visible_text(&client).await;
    screenshot(&client, "03-return-paid.png").await;
    assert!(returned.contains("Paid. Thank you!"), "{returned}");
    let invoice = launched.app.service().store().invoice(seed.invoice_id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Paid);

    // The same link is gone for good.
    client.goto(&seed.public_url).await.unwrap();
    let gone = visible_text(&client).await;
    screenshot(&client, "04-public-link-gone.png").await;
    assert!(gone.contains("This payment link is no longer active"), "{gone}");
    assert!(gone.contains("The invoice has been paid."), "{gone}");
    assert!(!gone.contains("EUR 49.90"), "{gone}");

    // Sign in as the customer and open the invoice.
    client.find(Locator::LinkText("Sign in")).await.unwrap().click().await.unwrap();
    let token_field = client.wait().at_most(WAIT).for_element(Locator::Id("token")).await.unwrap();
    token_field.send_keys(&seed.customer.token).await.unwrap();
    client.find(Locator::Css("#sign-in button")).await.unwrap().click().await.unwrap();
    client.wait().at_most(WAIT).for_element(Locator::Id("invoices")).await.unwrap();
    client.find(Locator::LinkText("2026-0012")).await.unwrap().click().await.unwrap();
    client.wait().at_most(WAIT).for_element(Locator::Id("rows")).await.unwrap();
    let details = visible_text(&client).await;
    screenshot(&client, "05-workspace-invoice.png").await;
    for expected in ["Invoice 2026-0012", "Customer Ltd", "Design sprint, 2 days", "Website redesign", "Paid"] {
        assert!(details.contains(expected), "missing {expected:?}:\n{details}");
    }
    assert!(details.contains("Brand guidelines – Open"), "{details}");
    assert!(!details.contains("split the next invoice"), "{details}");

    client.close().await.unwrap();
}
