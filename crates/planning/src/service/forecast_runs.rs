//! Forecasting every product as one durable run: queued as a job, each product's forecast
//! stored with the run's checkpoint in one transaction, so a run stopped anywhere (even by
//! `kill -9`) goes on after its last product and forecasts none twice.

use sightline_platform::RequestContext;

use super::{actor_id, PlanningService};
use crate::error::PlanningError;
use crate::forecast::{self, Method};
use crate::store::runs::{self as store, ForecastRun};

/// Products read from the store at a time.
const PAGE: i64 = 200;

/// How a pass over a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every product done.
    Finished,
    /// Asked to stop; the run goes on from its checkpoint.
    Stopped,
}

/// Checks a run's model and horizon.
pub fn check_run(model_type: &str, horizon: i64) -> Result<(), PlanningError> {
    if Method::from_id(model_type).is_none() {
        return Err(PlanningError::invalid("model_type", format!("unknown forecast model '{model_type}'")));
    }
    if !(1..=24).contains(&horizon) {
        return Err(PlanningError::invalid("horizon", "must be 1 to 24"));
    }
    Ok(())
}

impl PlanningService {
    /// Queues a run forecasting every product with `model_type` `horizon` months ahead.
    pub async fn start_forecast_run(
        &self,
        context: &RequestContext,
        model_type: &str,
        horizon: i64,
    ) -> Result<ForecastRun, PlanningError> {
        check_run(model_type, horizon)?;
        let id = format!("fcrun_{}", uuid::Uuid::new_v4().simple());
        let mut tx = self.db().begin().await?;
        store::create(&mut tx, &id, model_type, horizon, actor_id(context).as_deref()).await?;
        self.queue()
            .push(&mut tx, &crate::jobs::ForecastAll { run_id: id.clone() })
            .await
            .map_err(PlanningError::Internal)?;
        let run = store::get(&mut tx, &id).await?.ok_or_else(|| anyhow::anyhow!("the run just made"))?;
        self.publish(&mut tx, context, "forecast_run.queued", ("forecast_run", &id), (None, Some(&run)))
            .await?;
        tx.commit().await?;
        self.queue().wake();
        Ok(run)
    }

    /// Creates a run for the command line (no job: the command runs it).
    pub async fn create_forecast_run(
        &self,
        model_type: &str,
        horizon: i64,
    ) -> Result<ForecastRun, PlanningError> {
        check_run(model_type, horizon)?;
        let mut conn = self.db().writer().acquire().await?;
        if let Some(run) = store::unfinished(&mut conn, model_type, horizon).await? {
            return Ok(run);
        }
        let id = format!("fcrun_{}", uuid::Uuid::new_v4().simple());
        store::create(&mut conn, &id, model_type, horizon, None).await?;
        Ok(store::get(&mut conn, &id).await?.ok_or_else(|| anyhow::anyhow!("the run just made"))?)
    }

    /// One run.
    pub async fn forecast_run(&self, id: &str) -> Result<ForecastRun, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        store::get(&mut conn, id)
            .await?
            .ok_or_else(|| PlanningError::NotFoundText(format!("no forecast run {id}")))
    }

    /// The latest runs.
    pub async fn forecast_runs(&self) -> Result<Vec<ForecastRun>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::list(&mut conn, 50).await?)
    }

    /// Forecasts the run's products after its checkpoint, one transaction each (forecast and
    /// checkpoint together), until done or `stop()`; `progress` sees the run after each.
    pub async fn run_forecasts(
        &self,
        run_id: &str,
        stop: &(dyn Fn() -> bool + Send + Sync),
        progress: &mut (dyn FnMut(&ForecastRun) + Send),
    ) -> Result<RunEnd, PlanningError> {
        let mut run = self.forecast_run(run_id).await?;
        if run.status == "succeeded" || run.status == "failed" {
            return Ok(RunEnd::Finished);
        }
        {
            let mut conn = self.db().writer().acquire().await?;
            store::start(&mut conn, run_id).await?;
        }
        let horizon = usize::try_from(run.horizon).unwrap_or(6);
        loop {
            let products = {
                let mut conn = self.db().reader().acquire().await?;
                store::products_after(&mut conn, run.last_product_id, PAGE).await?
            };
            if products.is_empty() {
                break;
            }
            for product_id in products {
                if stop() {
                    return Ok(RunEnd::Stopped);
                }
                let computed = self.compute_forecast(product_id, horizon, Some(&run.model_type)).await;
                let mut tx = self.db().begin().await?;
                let ok = match computed {
                    Ok((_, rows)) => {
                        crate::store::forecasts::replace(&mut tx, &rows).await?;
                        true
                    }
                    Err(PlanningError::InsufficientData(_) | PlanningError::NotFound { .. }) => false,
                    Err(e) => return Err(e),
                };
                store::checkpoint(&mut tx, run_id, product_id, ok).await?;
                tx.commit().await?;
                run.last_product_id = product_id;
                if ok {
                    run.done += 1;
                } else {
                    run.failed += 1;
                }
                progress(&run);
            }
        }
        let mut tx = self.db().begin().await?;
        store::finish(&mut tx, run_id, None).await?;
        let finished = store::get(&mut tx, run_id).await?;
        let context = RequestContext::system();
        self.publish(
            &mut tx,
            &context,
            "forecast_run.finished",
            ("forecast_run", run_id),
            (None, finished.as_ref()),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(run = run_id, done = run.done, failed = run.failed, "planning.forecast_run_finished");
        Ok(RunEnd::Finished)
    }

    /// Ends the run as failed with `error`.
    pub async fn fail_forecast_run(
        &self,
        conn: &mut sqlx::AnyConnection,
        run_id: &str,
        error: &str,
    ) -> Result<(), PlanningError> {
        Ok(store::finish(conn, run_id, Some(error)).await?)
    }
}

/// Methods a run may use (every method id).
pub fn run_methods() -> Vec<&'static str> {
    forecast::METHODS.iter().map(|(_, id, ..)| *id).collect()
}
