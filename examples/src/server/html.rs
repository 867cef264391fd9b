//! HTML building: escaping and the page frame every page shares.
//!
//! Pages are plain strings. Every value that did not come from this crate's
//! own source text goes through [`escape`] before it
//! is placed in a page, so a company called `<script>` stays text. This
//! module must never interpolate a value without escaping it.

use std::fmt::{self, Write as _};

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::i18n::Lang;

/// Escapes text for an HTML element body or a double-quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A fragment of HTML that is safe to place in a page as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markup(String);

impl Markup {
    /// Trusted markup written in this crate's source. Never pass it outside data.
    pub fn raw(html: impl Into<String>) -> Markup {
        Markup(html.into())
    }

    pub fn push(&mut self, other: Markup) {
        self.0.push_str(&other.0);
    }

    /// Appends trusted markup built with `format_args!`; every argument must
    /// already be escaped (see [`escape`]).
    pub fn push_fmt(&mut self, arguments: fmt::Arguments<'_>) {
        // Writing into a String cannot fail.
        let _ = self.0.write_fmt(arguments);
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A whole page: its status, language, title and body.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    pub lang: Lang,
    pub title: String,
    pub body: Markup,
    /// Seconds after which the browser reloads the page, for pages that wait.
    pub refresh_after: Option<u32>,
}

impl Page {
    pub fn new(lang: Lang, title: impl Into<String>, body: Markup) -> Page {
        Page { status: StatusCode::OK, lang, title: title.into(), body, refresh_after: None }
    }

    pub fn status(mut self, status: StatusCode) -> Page {
        self.status = status;
        self
    }

    pub fn refresh_after(mut self, seconds: u32) -> Page {
        self.refresh_after = Some(seconds);
        self
    }

    pub fn render(&self) -> String {
        let refresh = self
            .refresh_after
            .map(|seconds| format!("<meta http-equiv=\"refresh\" content=\"{seconds}\">"))
            .unwrap_or_default();
        format!(
            "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
             <title>{title}</title><style>{STYLE}</style></head>\n<body><main>\n{body}\n</main></body></html>\n",
            lang = self.lang.code(),
            title = escape(&self.title),
            body = self.body.as_str(),
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (self.status, Html(self.render())).into_response()
    }
}

/// A link; `href` and `label` are escaped here.
pub fn link(href: &str, label: &str) -> Markup {
    Markup::raw(format!("<a href=\"{}\">{}</a>", escape(href), escape(label)))
}

/// A link to the same page in the other language.
pub fn language_switch(lang: Lang) -> Markup {
    let other = match lang {
        Lang::En => Lang::Et,
        Lang::Et => Lang::En,
    };
    Markup::raw(format!(
        "<nav><a href=\"?lang={}\" hreflang=\"{}\">{}</a></nav>\n",
        other.code(),
        other.code(),
        escape(lang.texts().language_switch)
    ))
}

/// A heading and one paragraph, the body of most short pages.
pub fn message(heading: &str, text: &str) -> Markup {
    Markup::raw(format!("<h1>{}</h1>\n<p>{}</p>", escape(heading), escape(text)))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#1d1d1b}\
main{max-width:46rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border:1px solid #ddd;border-radius:8px}\
h1{font-size:1.5rem}table{border-collapse:collapse;width:100%;margin:1rem 0}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e5e5e5;vertical-align:top}\
.amount{font-size:2rem;font-weight:600}.hint{color:#555}.notice{background:#fff6d6;padding:.6rem;border-radius:4px}\
form.inline{display:inline}button{font-size:1rem;padding:.45rem .9rem;margin:.2rem .3rem .2rem 0;cursor:pointer}\
input,select{font-size:1rem;padding:.3rem;margin:.2rem 0}nav{margin-bottom:1rem;font-size:.9rem}\
nav a{margin-right:.8rem}.staff{border-left:4px solid #8a5;padding-left:.8rem}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(escape("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(escape("a \"b\" & c"), "a &quot;b&quot; &amp; c");
        assert_eq!(escape("Ülle & Co"), "Ülle &amp; Co");
    }

    #[test]
    fn page_escapes_its_title() {
        let page = Page::new(Lang::En, "<b>", Markup::raw(escape("<i>")));
        let html = page.render();

        assert!(html.contains("<title>&lt;b&gt;</title>"));
        assert!(html.contains("&lt;i&gt;"));
        assert!(!html.contains("<i>"));
    }
}
