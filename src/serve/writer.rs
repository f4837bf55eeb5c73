//! Answers to an SQLite store, written together (group commit).
//!
//! SQLite has one writer at a time, and each commit waits for the disk
//! (`synchronous = FULL`). One task takes the answers (confirm, defer,
//! decline) as they come and writes the ones that arrived while the last
//! transaction was committing in one transaction
//! ([`crate::Engine::respond_batch`]): each answer after a mark of its own, so a
//! refused one is undone alone and gets its own error, each accepted one
//! with its own log entry; one commit, one sync, for them all. Every reply
//! waits for that commit: an acknowledged answer is on disk. When the
//! transaction as a whole fails, every answer of it gets the error and none
//! is recorded.
//!
//! PostgreSQL stores run their writers side by side (each event's rows
//! locked as loaded), several services may share them, and the server
//! groups concurrent commits' WAL flushes itself: answers there are written
//! one transaction each.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::error::{ApiError, ServeError};
use super::pool::Pool;
use crate::{AgentId, FixedClock, Response, TMinusEvent};

/// The most answers one transaction writes.
pub const MAX_BATCH: usize = 64;

/// What an answer gets back: the event as settled and its campaign's name.
type Answered = Result<(TMinusEvent, Option<String>), ApiError>;

/// One answer waiting to be written.
struct Job {
    reference: String,
    agent: AgentId,
    response: Response,
    reply: oneshot::Sender<Answered>,
}

/// The answer writer of a service on SQLite.
#[derive(Debug, Clone)]
pub(crate) struct AnswerWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// What the writing task shares with the service.
pub(crate) struct Context {
    /// Store connections.
    pub pool: Arc<Pool>,
    /// The pinned clock of tests, if any.
    pub clock_for_tests: Option<DateTime<Utc>>,
    /// One writer at a time: the service's other writes hold it too.
    pub writer: Arc<Semaphore>,
    /// The bound of operations at once: a batch is one.
    pub operations: Arc<Semaphore>,
}

impl AnswerWriter {
    /// Starts the writing task on the current runtime. It ends when every
    /// [`AnswerWriter`] is dropped.
    pub(crate) fn start(context: Context) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(queue, context));
        AnswerWriter { jobs }
    }

    /// Records `agent`'s `response` to the event `reference` names, once
    /// committed.
    pub(crate) async fn answer(
        &self,
        reference: String,
        agent: AgentId,
        response: Response,
    ) -> Answered {
        let stopped = || {
            ApiError::from(ServeError::Internal {
                reason: "the answer writer has stopped".into(),
            })
        };
        let (reply, answered) = oneshot::channel();
        self.jobs
            .send(Job {
                reference,
                agent,
                response,
                reply,
            })
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// Writes the queued answers, a batch at a time, until every sender is
/// gone.
async fn write_batches(mut queue: mpsc::UnboundedReceiver<Job>, context: Context) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let permits = async {
            let writer = context.writer.clone().acquire_owned().await?;
            let operation = context.operations.clone().acquire_owned().await?;
            Ok::<_, tokio::sync::AcquireError>((writer, operation))
        }
        .await;
        let Ok(permits) = permits else {
            fail(jobs, "the service is stopping");
            continue;
        };
        let pool = context.pool.clone();
        let now = context.clock_for_tests.unwrap_or_else(Utc::now);
        let written = tokio::task::spawn_blocking(move || {
            let answers: Vec<(String, AgentId, Response)> = jobs
                .iter()
                .map(|j| (j.reference.clone(), j.agent.clone(), j.response.clone()))
                .collect();
            let results = pool.take().and_then(|mut engine| {
                engine.set_clock(Arc::new(FixedClock::new(now)));
                engine.respond_batch(&answers)
            });
            drop(permits);
            match results {
                Ok(results) => {
                    for (job, result) in jobs.into_iter().zip(results) {
                        let _ = job.reply.send(result.map_err(ApiError::from));
                    }
                }
                Err(e) => {
                    let e = ApiError::from(e);
                    for job in jobs {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                }
            }
        })
        .await;
        // A panic in the batch drops its replies: their requests answer
        // that the writer stopped; the next batch goes on.
        let _ = written;
    }
}

/// Answers every job of `jobs` with an internal error.
fn fail(jobs: Vec<Job>, reason: &str) {
    for job in jobs {
        let _ = job.reply.send(Err(ServeError::Internal {
            reason: reason.to_string(),
        }
        .into()));
    }
}
