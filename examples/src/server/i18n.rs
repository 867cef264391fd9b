//! The language of customer-facing pages: English or Estonian.
//!
//! A `lang` query parameter wins; otherwise the first supported language of
//! `Accept-Language` in order of preference; otherwise English. Staff pages,
//! logs and error details stay in English. This module holds every
//! customer-facing sentence, so a page never hard-codes one language.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use billing_domain::{InvoiceStatus, Money};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Et,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Et => "et",
        }
    }

    fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("et") {
            Some(Lang::Et)
        } else {
            None
        }
    }

    /// The language a request asks for: `lang` in the query, then `Accept-Language`.
    pub fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Lang {
        let from_query = query.and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "lang")
                .and_then(|(_, value)| Lang::from_tag(&value))
        });
        if let Some(lang) = from_query {
            return lang;
        }
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .and_then(preferred_from_accept_language)
            .unwrap_or_default()
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Et => &ET,
        }
    }

    /// An amount with the currency code, in this language's number format.
    pub fn money(self, money: &Money) -> String {
        let digits = usize::try_from(money.currency().exponent()).unwrap_or(0);
        let number = format!("{:.*}", digits, money.amount());
        match self {
            Lang::En => format!("{} {number}", money.currency().code()),
            Lang::Et => format!("{} {}", number.replace('.', ","), money.currency().code()),
        }
    }

    pub fn invoice_status(self, status: InvoiceStatus) -> &'static str {
        let texts = self.texts();
        match status {
            InvoiceStatus::Draft => texts.status_draft,
            InvoiceStatus::Open => texts.status_open,
            InvoiceStatus::Paid => texts.status_paid,
            InvoiceStatus::PartiallyRefunded => texts.status_partially_refunded,
            InvoiceStatus::Refunded => texts.status_refunded,
            InvoiceStatus::Disputed => texts.status_disputed,
            InvoiceStatus::Void => texts.status_void,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Lang, Infallible> {
        Ok(Lang::negotiate(parts.uri.query(), &parts.headers))
    }
}

/// The highest-weighted supported language of an `Accept-Language` value.
fn preferred_from_accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(u16, Lang)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default();
        let weight =
            parts.find_map(|parameter| parameter.trim().strip_prefix("q=")).map_or(1000, |q| parse_weight(q.trim()));
        let Some(lang) = Lang::from_tag(tag) else { continue };
        if weight > 0 && best.is_none_or(|(best_weight, _)| weight > best_weight) {
            best = Some((weight, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// A `q` value in thousandths; anything unreadable counts as zero.
fn parse_weight(q: &str) -> u16 {
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    let whole: u16 = match whole {
        "1" => 1000,
        "0" => 0,
        _ => return 0,
    };
    let mut thousandths = 0u16;
    for (position, digit) in fraction.chars().take(3).enumerate() {
        let Some(value) = digit.to_digit(10) else { return 0 };
        let scale = [100, 10, 1][position];
        thousandths += u16::try_from(value).unwrap_or(0) * scale;
    }
    (whole + thousandths).min(1000)
}

/// Every sentence a customer can read, in one language.
#[derive(Debug)]
pub struct Texts {
    pub language_switch: &'static str,
    pub home_title: &'static str,
    pub home_text: &'static str,
    pub page_not_found: &'static str,
    pub payment_not_found: &'static str,
    pub pay_title: &'static str,
    pub status: &'static str,
    pub payable: &'static str,
    pub processing: &'static str,
    pub sign_in_hint: &'static str,
    pub pay_with: &'static str,
    pub complete_free: &'static str,
    pub no_provider: &'static str,
    pub gone_title: &'static str,
    pub gone_paid: &'static str,
    pub gone_void: &'static str,
    pub gone_sign_in: &'static str,
    pub not_found_title: &'static str,
    pub not_found_link: &'static str,
    pub in_progress: &'static str,
    pub start_failed: &'static str,
    pub return_title: &'static str,
    pub confirming: &'static str,
    pub refreshes: &'static str,
    pub paid: &'static str,
    pub not_completed: &'static str,
    pub open_workspace: &'static str,
    pub sign_in: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_token: &'static str,
    pub sign_in_failed: &'static str,
    pub sign_out: &'static str,
    pub signed_in_required: &'static str,
    pub forbidden: &'static str,
    pub workspace_title: &'static str,
    pub your_invoices: &'static str,
    pub no_invoices: &'static str,
    pub invoice: &'static str,
    pub company: &'static str,
    pub description: &'static str,
    pub quantity: &'static str,
    pub unit_price: &'static str,
    pub line_total: &'static str,
    pub total: &'static str,
    pub row_details: &'static str,
    pub content: &'static str,
    pub credits: &'static str,
    pub open_content: &'static str,
    pub locked_content: &'static str,
    pub receipts: &'static str,
    pub no_receipts: &'static str,
    pub projects: &'static str,
    pub no_projects: &'static str,
    pub balance: &'static str,
    pub held: &'static str,
    pub available: &'static str,
    pub history: &'static str,
    pub entry_grant: &'static str,
    pub entry_consumption: &'static str,
    pub entry_capture: &'static str,
    pub entry_reversal: &'static str,
    pub entry_adjustment: &'static str,
    pub error_title: &'static str,
    pub error_text: &'static str,
    pub status_draft: &'static str,
    pub status_open: &'static str,
    pub status_paid: &'static str,
    pub status_partially_refunded: &'static str,
    pub status_refunded: &'static str,
    pub status_disputed: &'static str,
    pub status_void: &'static str,
}

static EN: Texts = Texts {
    language_switch: "Eesti keeles",
    home_title: "Billing workspace",
    home_text: "Open the payment link you received to pay an invoice, or sign in to the workspace.",
    page_not_found: "There is no page at this address.",
    payment_not_found: "No payment with this reference is on record.",
    pay_title: "Pay your invoice",
    status: "Status",
    payable: "Awaiting payment",
    processing: "A payment is being processed. Wait for it to finish before you pay again.",
    sign_in_hint: "Sign in to the workspace to see the details.",
    pay_with: "Pay with",
    complete_free: "Confirm (nothing to pay)",
    no_provider: "No payment method is available right now. Contact the sender of the invoice.",
    gone_title: "This payment link is no longer active",
    gone_paid: "The invoice has been paid.",
    gone_void: "The invoice has been withdrawn.",
    gone_sign_in: "Sign in to the workspace to see the invoice.",
    not_found_title: "Payment link not found",
    not_found_link: "This payment link does not exist. Check that you copied the whole link.",
    in_progress: "A payment for this invoice is already in progress. Wait for it to finish.",
    start_failed: "The payment could not be started. Try again in a moment.",
    return_title: "Payment",
    confirming: "Payment received, confirming…",
    refreshes: "This page refreshes by itself.",
    paid: "Paid. Thank you!",
    not_completed: "The payment was not completed. You can open your payment link again to try once more.",
    open_workspace: "Open the workspace",
    sign_in: "Sign in",
    sign_in_title: "Sign in to the workspace",
    sign_in_token: "Access token",
    sign_in_failed: "That access token is not valid. Check it and try again.",
    sign_out: "Sign out",
    signed_in_required: "Sign in to see this page.",
    forbidden: "Your account cannot see this page.",
    workspace_title: "Workspace",
    your_invoices: "Your invoices",
    no_invoices: "No invoices yet.",
    invoice: "Invoice",
    company: "Company",
    description: "Description",
    quantity: "Quantity",
    unit_price: "Unit price",
    line_total: "Line total",
    total: "Total",
    row_details: "Details",
    content: "Content",
    credits: "Credits",
    open_content: "Open",
    locked_content: "available once the invoice is paid",
    receipts: "Receipts",
    no_receipts: "No receipts yet.",
    projects: "Projects",
    no_projects: "No projects yet.",
    balance: "Balance",
    held: "Reserved",
    available: "Available",
    history: "History",
    entry_grant: "Bought with an invoice",
    entry_consumption: "Used by",
    entry_capture: "Used by",
    entry_reversal: "Taken back after a refund or dispute",
    entry_adjustment: "Adjustment",
    error_title: "Something went wrong",
    error_text: "The request could not be completed. Try again in a moment.",
    status_draft: "Draft",
    status_open: "Open",
    status_paid: "Paid",
    status_partially_refunded: "Partly refunded",
    status_refunded: "Refunded",
    status_disputed: "Disputed",
    status_void: "Withdrawn",
};

static ET: Texts = Texts {
    language_switch: "In English",
    home_title: "Arvelduse töökeskkond",
    home_text: "Arve tasumiseks ava saadud maksmislink või logi sisse töökeskkonda.",
    page_not_found: "Sellel aadressil lehte ei ole.",
    payment_not_found: "Selle viitega makset ei leitud.",
    pay_title: "Arve tasumine",
    status: "Olek",
    payable: "Ootab tasumist",
    processing: "Makset töödeldakse. Oota, kuni see lõpeb, enne kui uuesti maksad.",
    sign_in_hint: "Üksikasjade nägemiseks logi sisse töökeskkonda.",
    pay_with: "Maksa:",
    complete_free: "Kinnita (midagi ei ole vaja maksta)",
    no_provider: "Praegu ei ole ühtki makseviisi saadaval. Võta ühendust arve saatjaga.",
    gone_title: "See maksmislink ei ole enam kehtiv",
    gone_paid: "Arve on tasutud.",
    gone_void: "Arve on tühistatud.",
    gone_sign_in: "Arve nägemiseks logi sisse töökeskkonda.",
    not_found_title: "Maksmislinki ei leitud",
    not_found_link: "Sellist maksmislinki ei ole. Kontrolli, et kopeerisid kogu lingi.",
    in_progress: "Selle arve makse on juba pooleli. Oota, kuni see lõpeb.",
    start_failed: "Makset ei õnnestunud alustada. Proovi hetke pärast uuesti.",
    return_title: "Makse",
    confirming: "Makse on vastu võetud, kinnitame…",
    refreshes: "See leht värskendab end ise.",
    paid: "Makstud. Aitäh!",
    not_completed: "Makse jäi lõpetamata. Võid maksmislingi uuesti avada ja veel kord proovida.",
    open_workspace: "Ava töökeskkond",
    sign_in: "Logi sisse",
    sign_in_title: "Töökeskkonda sisselogimine",
    sign_in_token: "Juurdepääsuvõti",
    sign_in_failed: "See juurdepääsuvõti ei kehti. Kontrolli seda ja proovi uuesti.",
    sign_out: "Logi välja",
    signed_in_required: "Selle lehe nägemiseks logi sisse.",
    forbidden: "Sinu kasutajal ei ole sellele lehele ligipääsu.",
    workspace_title: "Töökeskkond",
    your_invoices: "Sinu arved",
    no_invoices: "Arveid veel ei ole.",
    invoice: "Arve",
    company: "Ettevõte",
    description: "Kirjeldus",
    quantity: "Kogus",
    unit_price: "Ühiku hind",
    line_total: "Rea summa",
    total: "Kokku",
    row_details: "Üksikasjad",
    content: "Sisu",
    credits: "Krediidid",
    open_content: "Ava",
    locked_content: "saadaval pärast arve tasumist",
    receipts: "Kviitungid",
    no_receipts: "Kviitungeid veel ei ole.",
    projects: "Projektid",
    no_projects: "Projekte veel ei ole.",
    balance: "Saldo",
    held: "Broneeritud",
    available: "Saadaval",
    history: "Ajalugu",
    entry_grant: "Ostetud arvega",
    entry_consumption: "Kasutas",
    entry_capture: "Kasutas",
    entry_reversal: "Tagasi võetud pärast tagasimakset või vaidlust",
    entry_adjustment: "Korrektuur",
    error_title: "Midagi läks valesti",
    error_text: "Päringut ei õnnestunud lõpetada. Proovi hetke pärast uuesti.",
    status_draft: "Mustand",
    status_open: "Avatud",
    status_paid: "Makstud",
    status_partially_refunded: "Osaliselt tagastatud",
    status_refunded: "Tagastatud",
    status_disputed: "Vaidlustatud",
    status_void: "Tühistatud",
};

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use billing_domain::Currency;
    use rust_decimal_macros::dec;

    use super::*;

    fn headers(accept_language: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(accept_language).unwrap());
        headers
    }

    #[test]
    fn query_parameter_wins_over_header() {
        assert_eq!(Lang::negotiate(Some("lang=en"), &headers("et")), Lang::En);
        assert_eq!(Lang::negotiate(Some("x=1&lang=et"), &headers("en")), Lang::Et);
    }

    #[test]
    fn accept_language_follows_weights() {
        assert_eq!(Lang::negotiate(None, &headers("et-EE,et;q=0.9,en;q=0.8")), Lang::Et);
        assert_eq!(Lang::negotiate(None, &headers("de, en;q=0.5, et;q=0.7")), Lang::Et);
        assert_eq!(Lang::negotiate(None, &headers("fr, de")), Lang::En);
        assert_eq!(Lang::negotiate(None, &headers("et;q=0")), Lang::En);
        assert_eq!(Lang::negotiate(None, &HeaderMap::new()), Lang::En);
    }

    #[test]
    fn unknown_query_language_falls_back_to_header() {
        assert_eq!(Lang::negotiate(Some("lang=fi"), &headers("et")), Lang::Et);
    }

    #[test]
    fn money_uses_the_currency_exponent_and_local_separator() {
        let amount = Money::new(dec!(44.9), Currency::EUR).unwrap();

        assert_eq!(Lang::En.money(&amount), "EUR 44.90");
        assert_eq!(Lang::Et.money(&amount), "44,90 EUR");
    }
}
