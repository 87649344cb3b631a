//! Service instance endpoints: provision, fetch, update, deprovision, last_operation.

use super::edge::{path_param, read_json, OsbQuery};
use crate::error::BrokerError;
use crate::flows::FlowRequest;
use crate::service::{Broker, ProvisionOutcome, RequestContext, UpdateOutcome};
use crate::webhooks::event::take_tracing_id;
use actix_web::http::header;
use actix_web::{web, FromRequest as _, HttpRequest, HttpResponse};
use common::osb::{
    AsyncOperationResponse, OperationState, ProvisionRequest, ProvisionResponse, UpdateRequest,
    UpdateResponse,
};

const INSTANCE_ID: &str = "instance_id";

/// `PUT /v2/service_instances/{instance_id}`.
pub async fn provision(
    broker: web::Data<Broker>,
    mut ctx: RequestContext,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    let query = OsbQuery::parse_mutating(&req)?;
    let mut body: ProvisionRequest = read_json(&req, payload).await?;
    ctx.tracing_id = take_tracing_id(&mut body.parameters);
    let outcome = broker
        .provision(&ctx, &instance_id, body, query.accepts_incomplete())
        .await?;
    Ok(match outcome {
        ProvisionOutcome::Accepted {
            operation,
            dashboard_url,
            metadata,
        } => HttpResponse::Accepted().json(ProvisionResponse {
            dashboard_url,
            operation: Some(operation.into()),
            metadata: Some(metadata),
        }),
        ProvisionOutcome::AlreadyReady {
            dashboard_url,
            metadata,
        } => HttpResponse::Ok().json(ProvisionResponse {
            dashboard_url,
            operation: None,
            metadata: Some(metadata),
        }),
    })
}

/// `GET /v2/service_instances/{instance_id}`.
pub async fn fetch(
    broker: web::Data<Broker>,
    req: HttpRequest,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    OsbQuery::parse(&req)?;
    Ok(HttpResponse::Ok().json(broker.fetch_instance(&instance_id).await?))
}

/// `PATCH /v2/service_instances/{instance_id}`.
pub async fn update(
    broker: web::Data<Broker>,
    mut ctx: RequestContext,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    let query = OsbQuery::parse_mutating(&req)?;
    let mut body: UpdateRequest = read_json(&req, payload).await?;
    ctx.tracing_id = take_tracing_id(&mut body.parameters);
    Ok(
        match broker
            .update(&ctx, &instance_id, body, query.accepts_incomplete())
            .await?
        {
            UpdateOutcome::Applied => HttpResponse::Ok().json(UpdateResponse::default()),
            UpdateOutcome::Accepted { operation } => {
                HttpResponse::Accepted().json(UpdateResponse {
                    operation: Some(operation.into()),
                    ..Default::default()
                })
            }
        },
    )
}

/// `DELETE /v2/service_instances/{instance_id}`.
pub async fn deprovision(
    broker: web::Data<Broker>,
    ctx: RequestContext,
    req: HttpRequest,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    let query = OsbQuery::parse_mutating(&req)?;
    let accepts_incomplete = query.accepts_incomplete();
    let operation = broker
        .deprovision(
            &ctx,
            &instance_id,
            query.service_id,
            query.plan_id,
            accepts_incomplete,
        )
        .await?;
    Ok(HttpResponse::Accepted().json(AsyncOperationResponse {
        operation: Some(operation.into()),
    }))
}

/// `GET /v2/service_instances/{instance_id}/last_operation`.
pub async fn last_operation(
    broker: web::Data<Broker>,
    req: HttpRequest,
) -> Result<HttpResponse, BrokerError> {
    let instance_id = path_param(&req, INSTANCE_ID)?;
    let query = OsbQuery::parse(&req)?;
    let flow = last_operation_flow(&broker, &req, &instance_id, None, &query).await?;
    let answer = broker.instance_last_operation(&instance_id, query.operation());
    let body = broker.observed_last_operation(flow, answer).await?;
    Ok(last_operation_response(&broker, body))
}

/// A last_operation answer, with `Retry-After` while the operation is in progress.
pub fn last_operation_response(
    broker: &Broker,
    body: common::osb::LastOperationResponse,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if body.state == OperationState::InProgress {
        response.insert_header((header::RETRY_AFTER, broker.retry_after_secs().to_string()));
    }
    response.json(body)
}

/// The view last_operation flows get of this request; `None` when no flow observes
/// last_operation (the originating identity is then not even parsed).
pub async fn last_operation_flow(
    broker: &Broker,
    req: &HttpRequest,
    instance_id: &str,
    binding_id: Option<&str>,
    query: &OsbQuery,
) -> Result<Option<FlowRequest>, BrokerError> {
    if !broker.observes_last_operation() {
        return Ok(None);
    }
    let ctx = RequestContext::extract(req).await?;
    let hints = (
        query.service_id.as_deref(),
        query.plan_id.as_deref(),
        query.operation(),
    );
    Ok(Some(Broker::last_operation_request(
        &ctx,
        instance_id,
        binding_id,
        hints,
    )))
}
