//! Signing in with an access token and out again.
//!
//! The example issues access tokens to its demo users at start-up; a real
//! application would sign users in with its own identity provider and issue
//! the same kind of session token afterwards. A token that verifies is
//! stored in an `HttpOnly`, `SameSite=Lax` cookie; membership is checked by
//! each workspace route, not here.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::auth::{cleared_session_cookie, session_cookie};
use super::html::{escape, language_switch, Markup, Page};
use super::i18n::Lang;
use super::state::AppState;

/// `GET /signin`.
pub async fn form(lang: Lang) -> Page {
    sign_in_page(lang, None)
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    token: String,
}

/// `POST /signin`: sets the session cookie and opens the workspace.
pub async fn submit(State(state): State<AppState>, lang: Lang, Form(form): Form<SignInForm>) -> Response {
    let token = form.token.trim();
    match state.sessions().verify(token) {
        Ok(principal) => {
            tracing::info!(user_id = %principal.user_id, tenant_id = %principal.tenant_id, "signed in");
            let target = format!("/workspace?lang={}", lang.code());
            ([(header::SET_COOKIE, session_cookie(token))], Redirect::to(&target)).into_response()
        }
        Err(error) => {
            tracing::info!(%error, "sign-in refused");
            sign_in_page(lang, Some(lang.texts().sign_in_failed)).status(StatusCode::UNAUTHORIZED).into_response()
        }
    }
}

/// `POST /signout`: removes the session cookie.
pub async fn sign_out(lang: Lang) -> Response {
    let target = format!("/?lang={}", lang.code());
    ([(header::SET_COOKIE, cleared_session_cookie())], Redirect::to(&target)).into_response()
}

fn sign_in_page(lang: Lang, problem: Option<&str>) -> Page {
    let texts = lang.texts();
    let mut body = language_switch(lang);
    body.push_fmt(format_args!("<h1>{}</h1>\n", escape(texts.sign_in_title)));
    if let Some(problem) = problem {
        body.push_fmt(format_args!("<p class=\"notice\" id=\"sign-in-problem\">{}</p>\n", escape(problem)));
    }
    body.push(Markup::raw(format!(
        "<form method=\"post\" action=\"/signin?lang={code}\" id=\"sign-in\">\n\
         <label for=\"token\">{label}</label><br>\n\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" size=\"60\" required>\n\
         <button type=\"submit\">{button}</button>\n</form>\n",
        code = lang.code(),
        label = escape(texts.sign_in_token),
        button = escape(texts.sign_in),
    )));
    Page::new(lang, texts.sign_in_title, body)
}
