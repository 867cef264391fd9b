//! Starting payments, receiving webhooks and confirming returns.
//!
//! A payment row is committed before the provider is called, so a crash or
//! timeout during the call leaves a payment to reconcile instead of money
//! with no record. A call that may have taken effect leaves the payment
//! `Unknown`, never failed.

use serde::Serialize;
use time::OffsetDateTime;

use crate::event::ProviderEvent;
use crate::ids::{InvoiceId, PaymentId, ProviderName, ProviderReference};
use crate::invoice::{Invoice, InvoiceStatus};
use crate::log::{LogOutcome, LogSource};
use crate::payment::{Channel, ManualMethod, Payment, PaymentStatus};
use crate::provider::{ProviderError, StartLine, StartOutcome, StartRequest, WebhookRequest};
use crate::store::PaymentInsert;
use crate::token::PublicToken;

use super::events::{EventReport, Origin};
use super::{BillingError, BillingService, LogDraft, StaffContext};

/// Details of the paying browser that some providers require.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaymentOptions {
    pub customer_ip: Option<String>,
    pub locale: Option<String>,
}

/// The next step after starting a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStart {
    /// Send the browser to `url`; the payment is pending.
    Redirect { payment_id: PaymentId, url: String },
    /// Settled at once; `events` reports what was applied.
    Completed { payment: Payment, events: Vec<EventReport> },
    /// A card reader is processing it; the result arrives by webhook or fetch.
    TerminalStarted { payment_id: PaymentId, reader: String },
    /// The same manual or free payment was recorded before; nothing new happened.
    AlreadyRecorded { payment: Payment },
}

/// The statuses a return page may show, and nothing private.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReturnStatus {
    pub payment_id: PaymentId,
    pub payment_status: PaymentStatus,
    pub invoice_status: InvoiceStatus,
    /// Whether the store confirms the invoice as paid by this payment.
    pub confirmed: bool,
    /// Set when the provider could not be asked; the page should retry later.
    pub fetch_error: Option<String>,
}

impl BillingService {
    /// Starts a payment from the public link. Only hosted pages and, for a
    /// zero total, the free provider can be started this way.
    ///
    /// # Errors
    ///
    /// [`BillingError::PublicLinkNotFound`], [`BillingError::PublicLinkGone`],
    /// [`BillingError::NotPayable`], [`BillingError::PaymentInProgress`],
    /// [`BillingError::StartFailed`] and provider lookup errors.
    pub async fn start_public_payment(
        &self,
        token: &str,
        provider: &ProviderName,
        options: PaymentOptions,
    ) -> Result<PaymentStart, BillingError> {
        let invoice = self.invoice_for_token(token).await?;
        let total = invoice.total()?;
        let channel = if total.is_zero() { Channel::Free } else { Channel::HostedPage };
        self.start_payment(&invoice, provider, channel, options, None).await
    }

    /// Starts a card-present payment on a reader, as staff.
    ///
    /// # Errors
    ///
    /// As [`BillingService::start_public_payment`], plus [`BillingError::NotFound`]
    /// for an invoice of another tenant.
    pub async fn start_terminal_payment(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
        provider: &ProviderName,
        reader: &str,
    ) -> Result<PaymentStart, BillingError> {
        if reader.trim().is_empty() {
            return Err(BillingError::InvalidInput { reason: "reader id must not be empty".into() });
        }
        let invoice = self.staff_invoice_record(staff, invoice_id).await?;
        let channel = Channel::Terminal { reader: reader.to_owned() };
        self.start_payment(&invoice, provider, channel, PaymentOptions::default(), Some(staff)).await
    }

    /// Records money received outside any provider, confirmed by staff. The
    /// same `reference` (receipt number, bank transfer reference) recorded
    /// twice for one invoice returns the first payment.
    ///
    /// # Errors
    ///
    /// As [`BillingService::start_terminal_payment`].
    pub async fn record_manual_payment(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
        provider: &ProviderName,
        method: ManualMethod,
        reference: &str,
    ) -> Result<PaymentStart, BillingError> {
        if reference.trim().is_empty() {
            return Err(BillingError::InvalidInput {
                reason: "a manual payment needs its receipt or transfer reference".into(),
            });
        }
        let invoice = self.staff_invoice_record(staff, invoice_id).await?;
        let channel = Channel::Manual { method, reference: reference.to_owned() };
        self.start_payment(&invoice, provider, channel, PaymentOptions::default(), Some(staff)).await
    }

    /// Verifies a webhook with the named provider and applies its events.
    ///
    /// A verification failure is logged (without the payload) and returned as
    /// an error, and nothing is applied. Verified events are stored even when
    /// they cannot apply; the reports tell what became of each.
    ///
    /// # Errors
    ///
    /// [`BillingError::Provider`] for a rejected webhook, store errors when an
    /// event could not be stored (the provider should deliver it again).
    pub async fn handle_webhook(
        &self,
        provider_name: &ProviderName,
        request: &WebhookRequest,
    ) -> Result<Vec<EventReport>, BillingError> {
        let provider = self.provider(provider_name)?;
        let now = self.clock.now();
        let verified = provider.verify_webhook(request, now).await;
        let events = match verified.and_then(|events| only_from(provider_name, events)) {
            Ok(events) => events,
            Err(error) => {
                self.log_rejected_webhook(provider_name, &error, now).await?;
                return Err(error.into());
            }
        };
        self.apply_events(&events, Origin { source: LogSource::Webhook, actor: None }).await
    }

    /// Logs a webhook that failed verification, without its payload.
    pub(super) async fn log_rejected_webhook(
        &self,
        provider_name: &ProviderName,
        error: &ProviderError,
        now: OffsetDateTime,
    ) -> Result<(), BillingError> {
        tracing::warn!(provider = %provider_name, %error, "webhook rejected");
        let mut draft = LogDraft::new(LogSource::Webhook);
        draft.provider = Some(provider_name.clone());
        let mut tx = self.store.begin().await?;
        tx.append_log(&draft.entry(self.new_log_id(), LogOutcome::Rejected, error.to_string(), false, now)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Asks the provider for a payment's state after the customer returned,
    /// applies what it reports, and says whether the store now confirms payment.
    ///
    /// A provider that cannot be reached leaves everything as it is.
    ///
    /// # Errors
    ///
    /// [`BillingError::NotFound`] for an unknown payment, store errors.
    pub async fn confirm_return(&self, payment_id: PaymentId) -> Result<ReturnStatus, BillingError> {
        let Some(payment) = self.store.payment(payment_id).await? else {
            return Err(BillingError::not_found("payment", payment_id));
        };
        let fetch_error = self.fetch_and_apply(&payment, LogSource::Fetch, None).await?.err();
        self.return_status(payment_id, fetch_error).await
    }

    /// As [`BillingService::confirm_return`], for a return URL that carries the
    /// provider's reference (Stripe's `{CHECKOUT_SESSION_ID}`).
    ///
    /// # Errors
    ///
    /// [`BillingError::NotFound`] when no payment has that reference.
    pub async fn confirm_return_by_reference(
        &self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<ReturnStatus, BillingError> {
        let Some(payment) = self.store.payment_by_reference(provider, reference).await? else {
            return Err(BillingError::not_found("payment with reference", reference));
        };
        self.confirm_return(payment.id).await
    }

    pub(super) async fn apply_events(
        &self,
        events: &[ProviderEvent],
        origin: Origin,
    ) -> Result<Vec<EventReport>, BillingError> {
        let mut reports = Vec::with_capacity(events.len());
        for event in events {
            reports.push(self.ingest(event, origin).await?);
        }
        Ok(reports)
    }

    /// Fetches a payment's state and applies it. The inner error is the
    /// provider's, reported to the caller without failing the operation.
    pub(super) async fn fetch_and_apply(
        &self,
        payment: &Payment,
        source: LogSource,
        actor: Option<&StaffContext>,
    ) -> Result<Result<Vec<EventReport>, String>, BillingError> {
        let provider = self.provider(&payment.provider)?;
        match provider.fetch_payment(payment).await {
            Ok(events) => {
                let origin = Origin { source, actor: actor.map(StaffContext::user_id) };
                Ok(Ok(self.apply_events(&events, origin).await?))
            }
            Err(error) => {
                tracing::warn!(payment_id = %payment.id, provider = %payment.provider, %error, "fetching payment state failed");
                let now = self.clock.now();
                let mut draft = payment_draft(payment, source);
                draft.actor = actor.map(StaffContext::user_id);
                let mut tx = self.store.begin().await?;
                tx.append_log(&draft.entry(
                    self.new_log_id(),
                    LogOutcome::Failed,
                    format!("fetch failed: {error}"),
                    false,
                    now,
                ))
                .await?;
                tx.commit().await?;
                Ok(Err(error.to_string()))
            }
        }
    }

    async fn return_status(
        &self,
        payment_id: PaymentId,
        fetch_error: Option<String>,
    ) -> Result<ReturnStatus, BillingError> {
        let Some(payment) = self.store.payment(payment_id).await? else {
            return Err(BillingError::not_found("payment", payment_id));
        };
        let Some(invoice) = self.store.invoice(payment.invoice_id).await? else {
            return Err(BillingError::not_found("invoice", payment.invoice_id));
        };
        Ok(ReturnStatus {
            payment_id,
            payment_status: payment.status(),
            invoice_status: invoice.status(),
            confirmed: invoice.settled_by() == Some(payment_id),
            fetch_error,
        })
    }

    pub(super) async fn invoice_for_token(&self, token: &str) -> Result<Invoice, BillingError> {
        let hash = PublicToken::from_presented(token).hash();
        let Some(invoice) = self.store.invoice_by_token(&hash).await? else {
            return Err(BillingError::PublicLinkNotFound);
        };
        match invoice.status() {
            InvoiceStatus::Open => Ok(invoice),
            InvoiceStatus::Draft => Err(BillingError::PublicLinkNotFound),
            status => Err(BillingError::PublicLinkGone { status }),
        }
    }

    pub(super) async fn staff_invoice_record(
        &self,
        staff: &StaffContext,
        invoice_id: InvoiceId,
    ) -> Result<Invoice, BillingError> {
        match self.store.invoice(invoice_id).await? {
            Some(invoice) if invoice.tenant_id == staff.tenant_id => Ok(invoice),
            _ => Err(BillingError::not_found("invoice", invoice_id)),
        }
    }

    async fn start_payment(
        &self,
        invoice: &Invoice,
        provider_name: &ProviderName,
        channel: Channel,
        options: PaymentOptions,
        staff: Option<&StaffContext>,
    ) -> Result<PaymentStart, BillingError> {
        let provider = self.provider(provider_name)?;
        let lines = invoice.rows().iter().map(StartLine::from_row).collect::<Result<Vec<_>, _>>()?;
        let payment = match self.insert_started_payment(invoice.id, provider_name, channel, staff).await? {
            Ok(payment) => payment,
            Err(existing) => return Ok(PaymentStart::AlreadyRecorded { payment: existing }),
        };

        let request = StartRequest {
            tenant_id: payment.tenant_id,
            invoice_id: payment.invoice_id,
            payment_id: payment.id,
            invoice_number: invoice.number.clone(),
            amount: payment.amount,
            lines,
            channel: payment.channel.clone(),
            customer_ip: options.customer_ip,
            locale: options.locale,
            requested_at: self.clock.now(),
        };
        match provider.start_payment(&request).await {
            Ok(StartOutcome::Redirect { url, reference }) => {
                self.record_start(&payment, Some(reference), PaymentStatus::Pending, "redirected to the provider")
                    .await?;
                Ok(PaymentStart::Redirect { payment_id: payment.id, url })
            }
            Ok(StartOutcome::TerminalStarted { reference, reader }) => {
                self.record_start(
                    &payment,
                    Some(reference),
                    PaymentStatus::Pending,
                    "reader is processing the payment",
                )
                .await?;
                Ok(PaymentStart::TerminalStarted { payment_id: payment.id, reader })
            }
            Ok(StartOutcome::Completed { reference, events }) => {
                self.record_start(
                    &payment,
                    Some(reference),
                    PaymentStatus::Pending,
                    "provider completed the payment at once",
                )
                .await?;
                let origin = Origin { source: LogSource::Start, actor: staff.map(StaffContext::user_id) };
                let reports = self.apply_events(&events, origin).await?;
                let Some(payment) = self.store.payment(payment.id).await? else {
                    return Err(BillingError::not_found("payment", payment.id));
                };
                Ok(PaymentStart::Completed { payment, events: reports })
            }
            Err(error) => {
                let status = if error.is_ambiguous() { PaymentStatus::Unknown } else { PaymentStatus::Failed };
                tracing::warn!(payment_id = %payment.id, invoice_id = %payment.invoice_id, %error, status = %status, "starting payment failed");
                self.record_start(&payment, None, status, &format!("start failed: {error}")).await?;
                Err(BillingError::StartFailed { payment: payment.id, source: error })
            }
        }
    }

    /// Inserts the payment row for a new attempt, or returns the existing
    /// payment when a manual or free payment with the same reference exists.
    async fn insert_started_payment(
        &self,
        invoice_id: InvoiceId,
        provider: &ProviderName,
        channel: Channel,
        staff: Option<&StaffContext>,
    ) -> Result<Result<Payment, Payment>, BillingError> {
        self.with_retries(|| async {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let Some(invoice) = tx.load_invoice(invoice_id).await? else {
                return Err(BillingError::not_found("invoice", invoice_id));
            };
            let reference = planned_reference(&invoice, &channel)?;
            if let Some(reference) = &reference {
                if let Some(existing_id) = tx.find_payment_id(provider, reference).await? {
                    if let Some(existing) = tx.peek_payment(existing_id).await? {
                        return Ok(Err(existing));
                    }
                }
            }
            if !invoice.status().is_payable() {
                return Err(BillingError::NotPayable { invoice: invoice.id, status: invoice.status() });
            }
            let total = invoice.total()?;
            check_channel(&invoice, &channel, total)?;
            let manual = matches!(channel, Channel::Manual { .. });
            if let Some(busy) =
                tx.payments_for_invoice(invoice.id).await?.into_iter().find(|payment| payment.status().is_in_flight())
            {
                if !manual {
                    return Err(BillingError::PaymentInProgress { invoice: invoice.id, payment: busy.id });
                }
            }

            let mut payment = Payment::new(
                crate::ids::PaymentId::from_random_bytes(self.random_16()),
                invoice.tenant_id,
                invoice.id,
                provider.clone(),
                channel.clone(),
                total,
                now,
            );
            payment.reference = reference;
            if let PaymentInsert::ReferenceTaken(existing) = tx.insert_payment(&payment).await? {
                return Ok(Err(*existing));
            }
            let mut draft = payment_draft(&payment, if staff.is_some() { LogSource::Staff } else { LogSource::Start });
            draft.actor = staff.map(StaffContext::user_id);
            tx.append_log(&draft.entry(
                self.new_log_id(),
                LogOutcome::Applied,
                format!("payment started through {provider}"),
                false,
                now,
            ))
            .await?;
            tx.commit().await?;
            tracing::info!(payment_id = %payment.id, invoice_id = %invoice.id, provider = %provider, "payment started");
            Ok(Ok(payment))
        })
        .await
    }

    /// Stores the provider's reference and the status after the start call.
    async fn record_start(
        &self,
        payment: &Payment,
        reference: Option<ProviderReference>,
        status: PaymentStatus,
        what: &str,
    ) -> Result<(), BillingError> {
        self.with_retries(|| async {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            tx.load_invoice(payment.invoice_id).await?;
            let Some(mut current) = tx.load_payment(payment.id).await? else {
                return Err(BillingError::not_found("payment", payment.id));
            };
            // A planned reference (manual, free) is the idempotency key of the
            // payment, so the provider's answer never replaces it.
            if current.reference.is_none() {
                current.reference = reference.clone();
            }
            current.advance(status, now)?;
            tx.save_payment(&current).await?;
            let open = status == PaymentStatus::Unknown;
            let outcome = if status == PaymentStatus::Failed { LogOutcome::Failed } else { LogOutcome::Applied };
            tx.append_log(&payment_draft(&current, LogSource::Start).entry(
                self.new_log_id(),
                outcome,
                what.to_owned(),
                open,
                now,
            ))
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

/// The reference a payment carries before the provider is called: manual
/// payments are keyed by their invoice and receipt or transfer reference and
/// a free completion by its invoice, which makes both idempotent. The invoice
/// id keeps one tenant's receipt numbers from matching another tenant's payment.
fn planned_reference(invoice: &Invoice, channel: &Channel) -> Result<Option<ProviderReference>, BillingError> {
    match channel {
        Channel::Manual { method, reference } => {
            Ok(Some(ProviderReference::new(format!("{}:{}:{reference}", method.as_str(), invoice.id))?))
        }
        Channel::Free => Ok(Some(ProviderReference::new(format!("free:{}", invoice.id))?)),
        Channel::HostedPage | Channel::Terminal { .. } => Ok(None),
    }
}

/// Rejects verified events that name another provider: only the provider
/// that checked the signature vouches for them, so they must carry its name.
pub(super) fn only_from(
    provider: &ProviderName,
    events: Vec<ProviderEvent>,
) -> Result<Vec<ProviderEvent>, ProviderError> {
    if let Some(foreign) = events.iter().find(|event| &event.provider != provider) {
        return Err(ProviderError::InvalidWebhook {
            reason: format!("event {} names provider {}, not {provider}", foreign.event_id, foreign.provider),
        });
    }
    Ok(events)
}

fn check_channel(invoice: &Invoice, channel: &Channel, total: crate::money::Money) -> Result<(), BillingError> {
    let reason = match channel {
        Channel::Free if !total.is_zero() => "only a zero total can complete without payment",
        Channel::HostedPage | Channel::Terminal { .. } if total.is_zero() => {
            "a zero total completes through the free provider"
        }
        _ => return Ok(()),
    };
    Err(BillingError::ChannelNotAllowed { invoice: invoice.id, total: total.to_string(), reason })
}

pub(super) fn payment_draft(payment: &Payment, source: LogSource) -> LogDraft {
    let mut draft = LogDraft::new(source);
    draft.tenant_id = Some(payment.tenant_id);
    draft.invoice_id = Some(payment.invoice_id);
    draft.payment_id = Some(payment.id);
    draft.provider = Some(payment.provider.clone());
    draft
}
