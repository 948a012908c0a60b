//! A stand-in for stats.nba.com: the same paths (`/stats/<endpoint>`), parameters and
//! `resultSets` shapes over a generated, deterministic league ([`league`]), gzip when asked, and
//! the real service's failure modes on demand (`POST /standin/mode`): hanging, throttling (429),
//! failing (500 with its `{"Message": …}` body) and answering HTML instead of JSON. Tests and
//! the README's demo (`sightline sports stand-in`) use it; nothing here is part of the module's
//! API.

pub mod endpoints;
pub mod league;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use endpoints::{Answers, BadRequest};
use league::League;

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// As stats.nba.com does on a good day.
    #[default]
    Normal,
    /// Never answers (blocked cloud addresses see this).
    Hang,
    /// `429` with `Retry-After: 1`.
    Throttle,
    /// `500` with `{"Message":"An error has occurred."}`.
    Error,
    /// `200` with an HTML "Access Denied" page.
    NotJson,
}

/// The stand-in's switches: its mode, a delay before every answer, and how many requests came.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Control {
    /// The mode.
    #[serde(default)]
    pub mode: Mode,
    /// Milliseconds to wait before answering (in every mode but `hang`).
    #[serde(default)]
    pub latency_ms: u64,
    /// Columns answered empty (`null`) in the first row of every result set: a feed with a
    /// hole, for validation to find.
    #[serde(default)]
    pub blank_fields: Vec<String>,
}

struct Shared {
    answers: Answers,
    control: Mutex<Control>,
    requests: Mutex<BTreeMap<String, u64>>,
}

/// A stand-in over the league, living on `today` (games before it are played).
#[derive(Clone)]
pub struct StandIn {
    shared: Arc<Shared>,
}

impl StandIn {
    /// The stand-in on `today`.
    pub fn new(today: NaiveDate) -> Self {
        Self {
            shared: Arc::new(Shared {
                answers: Answers::new(League::new(), today),
                control: Mutex::new(Control::default()),
                requests: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Sets how it answers from now on.
    pub fn set(&self, control: Control) {
        *self.shared.control.lock().expect("control lock") = control;
    }

    /// Requests received per endpoint.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// The league it answers about.
    pub fn league(&self) -> &League {
        self.shared.answers.league()
    }

    /// Its routes: `/stats/{endpoint}`, and `/standin/mode`, `/standin/requests` to steer it.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/stats/{endpoint}", get(stats))
            .route("/standin/mode", get(get_mode).post(set_mode))
            .route("/standin/requests", get(requests))
            .layer(tower_http::compression::CompressionLayer::new().gzip(true))
            .with_state(self.clone())
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Serves on a free loopback port in the background; returns `http://127.0.0.1:<port>`.
    pub async fn spawn(&self) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(self.clone().serve(listener));
        Ok(base)
    }
}

async fn stats(
    State(standin): State<StandIn>,
    Path(endpoint): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let endpoint = endpoint.to_lowercase();
    *standin.shared.requests.lock().expect("requests lock").entry(endpoint.clone()).or_default() += 1;
    let control = standin.shared.control.lock().expect("control lock").clone();
    if control.mode == Mode::Hang {
        std::future::pending::<()>().await;
    }
    if control.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(control.latency_ms)).await;
    }
    match control.mode {
        Mode::Throttle => {
            return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "Too Many Requests")
                .into_response()
        }
        Mode::Error => {
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"Message": "An error has occurred."})))
                .into_response()
        }
        Mode::NotJson => {
            let page = "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY>Access Denied</BODY></HTML>";
            return ([(header::CONTENT_TYPE, "text/html")], page).into_response();
        }
        Mode::Normal | Mode::Hang => {}
    }
    let answers = &standin.shared.answers;
    let answer: Result<Value, BadRequest> = match endpoint.as_str() {
        "playergamelog" => answers.player_game_log(&params),
        "playercareerstats" => answers.player_career_stats(&params),
        "commonallplayers" => answers.common_all_players(&params),
        "teamgamelog" => answers.team_game_log(&params),
        "leaguegamelog" => answers.league_game_log(&params),
        "scoreboardv2" => answers.scoreboard_v2(&params),
        "scoreboardv3" => answers.scoreboard_v3(&params),
        _ => return (StatusCode::NOT_FOUND, "Not Found").into_response(),
    };
    match answer {
        Ok(mut body) => {
            blank(&mut body, &control.blank_fields);
            Json(body).into_response()
        }
        Err(BadRequest(text)) => (StatusCode::BAD_REQUEST, text).into_response(),
    }
}

/// Empties `fields` in the first row of each result set of `body`.
fn blank(body: &mut Value, fields: &[String]) {
    if fields.is_empty() {
        return;
    }
    let Some(sets) = body.get_mut("resultSets").and_then(Value::as_array_mut) else { return };
    for set in sets {
        let positions: Vec<usize> = set["headers"]
            .as_array()
            .map(|h| {
                h.iter()
                    .enumerate()
                    .filter(|(_, n)| fields.iter().any(|f| n.as_str() == Some(f)))
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(row) =
            set["rowSet"].as_array_mut().and_then(|rows| rows.first_mut()).and_then(Value::as_array_mut)
        {
            for i in &positions {
                if let Some(cell) = row.get_mut(*i) {
                    *cell = Value::Null;
                }
            }
        }
    }
}

async fn get_mode(State(standin): State<StandIn>) -> Json<Control> {
    Json(standin.shared.control.lock().expect("control lock").clone())
}

async fn set_mode(State(standin): State<StandIn>, Json(control): Json<Control>) -> Json<Control> {
    standin.set(control.clone());
    Json(control)
}

async fn requests(State(standin): State<StandIn>) -> Json<Value> {
    let by_endpoint = standin.requests();
    Json(json!({"total": by_endpoint.values().sum::<u64>(), "by_endpoint": by_endpoint}))
}
