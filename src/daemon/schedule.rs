//! The `daemon.schedule` cron expression: parsing, validation, next fire
//! time, and the task that turns fire times into `Trigger::Schedule`.
//!
//! We drive `croner` (the parser inside tokio-cron-scheduler) directly
//! instead of tokio-cron-scheduler's `JobScheduler`, for three reasons:
//! - a timezone job there freezes the UTC offset when the job is created, so
//!   it fires an hour off after a DST change until rebuilt; here the next
//!   fire time is computed in the real zone every time;
//! - its scheduler polls every 500 ms for ever (idle wake-ups, up to half a
//!   second late); here the task sleeps until the fire time;
//! - it spawns every tick, so runs can overlap; here a fire only sends a
//!   trigger into the daemon's single queue.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Event, Trigger};

/// A validated `daemon.schedule`, bound to its timezone.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The expression as the user wrote it, for messages.
    written: String,
    /// The 6-field form (seconds first) we actually evaluate.
    expanded: String,
    cron: Cron,
    zone: Tz,
}

/// Why a `daemon.schedule` / `daemon.timezone` pair was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "daemon.schedule is empty; write a cron expression such as \"*/15 * * * *\" or remove the key"
    )]
    Empty,
    #[error(
        "daemon.schedule \"{spec}\" has {count} fields; write 5 (minute hour day-of-month month day-of-week) or 6 (with seconds first)"
    )]
    FieldCount { spec: String, count: usize },
    #[error(
        "daemon.schedule \"{spec}\" is not supported: use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly, or a cron expression"
    )]
    UnknownAlias { spec: String },
    #[error(
        "daemon.schedule \"{spec}\" sets both day-of-month and day-of-week; cron implementations disagree on whether that means AND or OR, so set one of them to *"
    )]
    DayOfMonthAndWeek { spec: String },
    #[error("daemon.schedule \"{spec}\" is not a valid cron expression: {reason}")]
    Invalid { spec: String, reason: String },
    #[error("daemon.schedule \"{spec}\" never fires (no matching date within a year)")]
    NeverFires { spec: String },
    #[error(
        "daemon.timezone \"{name}\" is not a known IANA time zone; use a name such as \"Europe/Berlin\" or \"UTC\""
    )]
    UnknownTimezone { name: String },
}

impl Schedule {
    /// Parse a cron expression (5 or 6 fields, or an @alias) in a timezone
    /// (an IANA name; UTC when `None`).
    pub fn parse(spec: &str, timezone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let zone = match timezone.map(str::trim) {
            None => Tz::UTC,
            Some(name) => Tz::from_str(name).map_err(|_| ScheduleError::UnknownTimezone {
                name: name.to_owned(),
            })?,
        };
        let written = spec.trim().to_owned();
        let expanded = expand(&written)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build()
            .parse(&expanded)
            .map_err(|e| ScheduleError::Invalid {
                spec: written.clone(),
                reason: e.to_string(),
            })?;
        let schedule = Schedule {
            written,
            expanded,
            cron,
            zone,
        };
        // Catch "0 0 0 30 2 *" and the like now rather than at run time.
        if schedule.next_after(Utc::now()).is_none() {
            return Err(ScheduleError::NeverFires {
                spec: schedule.written,
            });
        }
        Ok(schedule)
    }

    /// The first fire time strictly after `after`, computed in the schedule's
    /// timezone (so DST changes are honoured), returned in UTC.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The expression as written in the manifest.
    pub fn spec(&self) -> &str {
        &self.written
    }

    /// The 6-field expression actually evaluated (seconds first).
    pub fn expanded(&self) -> &str {
        &self.expanded
    }

    /// The IANA name of the timezone ("UTC" by default).
    pub fn timezone(&self) -> &str {
        self.zone.name()
    }

    /// Same expression and zone: rescheduling would change nothing.
    pub fn same_as(&self, other: &Schedule) -> bool {
        self.expanded == other.expanded && self.zone == other.zone
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" ({})", self.written, self.zone.name())
    }
}

/// Normalise to the 6-field form: aliases spelled out, a 5-field expression
/// gets `0` seconds, and both day fields set is refused.
fn expand(spec: &str) -> Result<String, ScheduleError> {
    if spec.is_empty() {
        return Err(ScheduleError::Empty);
    }
    if let Some(alias) = spec.strip_prefix('@') {
        let fields = match alias.to_ascii_lowercase().as_str() {
            "yearly" | "annually" => "0 0 0 1 1 *",
            "monthly" => "0 0 0 1 * *",
            "weekly" => "0 0 0 * * 0",
            "daily" | "midnight" => "0 0 0 * * *",
            "hourly" => "0 0 * * * *",
            _ => {
                return Err(ScheduleError::UnknownAlias {
                    spec: spec.to_owned(),
                });
            }
        };
        return Ok(fields.to_owned());
    }
    let mut fields: Vec<&str> = spec.split_whitespace().collect();
    match fields.len() {
        5 => fields.insert(0, "0"),
        6 => {}
        count => {
            return Err(ScheduleError::FieldCount {
                spec: spec.to_owned(),
                count,
            });
        }
    }
    let unrestricted = |field: &str| field == "*" || field == "?";
    if !unrestricted(fields[3]) && !unrestricted(fields[5]) {
        return Err(ScheduleError::DayOfMonthAndWeek {
            spec: spec.to_owned(),
        });
    }
    Ok(fields.join(" "))
}

/// Longest single sleep: after it we re-read the wall clock, so a clock
/// step or a suspend delays a fire by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Spawn the task that sends `Trigger::Schedule` at every fire time.
/// Aborting the handle (e.g. on reschedule) stops it.
pub(crate) fn spawn(schedule: Schedule, events: mpsc::Sender<Event>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_fire: Option<DateTime<Utc>> = None;
        loop {
            // Never before the previous fire, so a clock stepped back does not
            // fire the same slot twice.
            let from = last_fire.map_or_else(Utc::now, |last| last.max(Utc::now()));
            let Some(next) = schedule.next_after(from) else {
                tracing::warn!(schedule = %schedule, "the schedule has no further fire time; scheduled runs stop");
                return;
            };
            sleep_until_wall(next).await;
            last_fire = Some(next);
            // A full queue already holds a run; this fire would coalesce into it.
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                events.try_send(Event::Run(Trigger::Schedule))
            {
                return;
            }
        }
    })
}

async fn sleep_until_wall(at: DateTime<Utc>) {
    loop {
        let Ok(left) = (at - Utc::now()).to_std() else {
            return; // `at` is now or in the past
        };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(MAX_SLEEP)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
    }

    #[test]
    fn five_fields_get_a_zero_seconds_field() {
        let s = Schedule::parse("*/15 * * * *", None).unwrap();
        assert_eq!(s.expanded(), "0 */15 * * * *");
        assert_eq!(s.timezone(), "UTC");
        assert_eq!(
            s.next_after(utc(2026, 3, 1, 10, 7, 30)),
            Some(utc(2026, 3, 1, 10, 15, 0))
        );
    }

    #[test]
    fn six_fields_are_taken_as_seconds_first() {
        let s = Schedule::parse("30 0 3 * * *", None).unwrap();
        assert_eq!(s.expanded(), "30 0 3 * * *");
        assert_eq!(
            s.next_after(utc(2026, 3, 1, 3, 0, 30)),
            Some(utc(2026, 3, 2, 3, 0, 30)),
            "the next fire is strictly after the given instant"
        );
    }

    #[test]
    fn aliases_expand_to_their_cron_meaning() {
        let at = utc(2026, 5, 13, 10, 20, 0); // a Wednesday
        let cases = [
            ("@hourly", utc(2026, 5, 13, 11, 0, 0)),
            ("@daily", utc(2026, 5, 14, 0, 0, 0)),
            ("@midnight", utc(2026, 5, 14, 0, 0, 0)),
            ("@weekly", utc(2026, 5, 17, 0, 0, 0)), // Sunday
            ("@monthly", utc(2026, 6, 1, 0, 0, 0)),
            ("@yearly", utc(2027, 1, 1, 0, 0, 0)),
            ("@ANNUALLY", utc(2027, 1, 1, 0, 0, 0)),
        ];
        for (spec, want) in cases {
            let s = Schedule::parse(spec, None).unwrap();
            assert_eq!(s.next_after(at), Some(want), "{spec}");
        }
    }

    #[test]
    fn day_of_week_alone_fires_only_on_that_day() {
        let s = Schedule::parse("0 9 * * MON", None).unwrap();
        // 2026-05-13 is a Wednesday; the next Monday is the 18th.
        assert_eq!(
            s.next_after(utc(2026, 5, 13, 10, 0, 0)),
            Some(utc(2026, 5, 18, 9, 0, 0))
        );
    }

    #[test]
    fn refuses_what_it_cannot_run_faithfully() {
        use ScheduleError::*;
        let refused = |spec: &str| Schedule::parse(spec, None).unwrap_err();
        assert_eq!(refused("  "), Empty);
        assert!(matches!(refused("* * * *"), FieldCount { count: 4, .. }));
        assert!(matches!(
            refused("0 0 0 1 1 * 2030"),
            FieldCount { count: 7, .. }
        ));
        assert!(matches!(refused("@reboot"), UnknownAlias { .. }));
        assert!(matches!(refused("0 0 1 * MON"), DayOfMonthAndWeek { .. }));
        assert!(matches!(refused("0 0 0 1-7 * 1"), DayOfMonthAndWeek { .. }));
        assert!(matches!(refused("61 * * * *"), Invalid { .. }));
        assert!(matches!(refused("0 0 30 2 *"), NeverFires { .. }));
        assert!(matches!(
            Schedule::parse("@daily", Some("Mars/Olympus")).unwrap_err(),
            UnknownTimezone { .. }
        ));
    }

    #[test]
    fn error_messages_name_the_key_and_say_what_to_write() {
        let msg = Schedule::parse("0 0 1 * MON", None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("daemon.schedule \"0 0 1 * MON\""), "{msg}");
        assert!(msg.contains("set one of them to *"), "{msg}");
    }

    #[test]
    fn a_timezone_schedule_fires_at_local_time_across_dst() {
        let s = Schedule::parse("0 3 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(s.timezone(), "Europe/Berlin");
        // Winter: 03:00 CET is 02:00 UTC.
        assert_eq!(
            s.next_after(utc(2026, 3, 27, 12, 0, 0)),
            Some(utc(2026, 3, 28, 2, 0, 0))
        );
        // Clocks go forward on 2026-03-29; 03:00 CEST is 01:00 UTC. A fixed
        // offset taken in winter would say 02:00 UTC here.
        assert_eq!(
            s.next_after(utc(2026, 3, 28, 12, 0, 0)),
            Some(utc(2026, 3, 29, 1, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 3, 29, 12, 0, 0)),
            Some(utc(2026, 3, 30, 1, 0, 0))
        );
    }

    #[test]
    fn a_timezone_changes_the_instant_not_the_wall_time() {
        let utc_daily = Schedule::parse("0 0 9 * * *", None).unwrap();
        let ny_daily = Schedule::parse("0 0 9 * * *", Some("America/New_York")).unwrap();
        let at = utc(2026, 7, 1, 0, 0, 0);
        assert_eq!(utc_daily.next_after(at), Some(utc(2026, 7, 1, 9, 0, 0)));
        // 09:00 EDT is 13:00 UTC.
        assert_eq!(ny_daily.next_after(at), Some(utc(2026, 7, 1, 13, 0, 0)));
    }

    #[test]
    fn same_as_compares_meaning_not_spelling() {
        let a = Schedule::parse("*/5 * * * *", None).unwrap();
        let b = Schedule::parse("0 */5 * * * *", None).unwrap();
        let c = Schedule::parse("0 */5 * * * *", Some("Europe/Paris")).unwrap();
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }

    #[tokio::test]
    async fn the_task_sends_a_schedule_trigger_when_it_fires() {
        let (tx, mut rx) = mpsc::channel(4);
        let task = spawn(Schedule::parse("* * * * * *", None).unwrap(), tx);
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an every-second schedule fires within 10 s");
        assert!(matches!(got, Some(Event::Run(Trigger::Schedule))));
        task.abort();
    }
}
