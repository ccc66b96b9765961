//! The outside-scheduler port on EventBridge Scheduler: one schedule per
//! hookrun schedule, named by its id, in the stack's group, sending the
//! fire message to the runs queue with the time it was scheduled for.

use async_trait::async_trait;
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use aws_sdk_scheduler::Client;

use super::backend;
use crate::config::SchedulerSettings;
use crate::error::{StoreError, StoreResult};
use crate::ports::{FireSource, FireSpec};

pub struct EventBridgeFires {
    client: Client,
    settings: SchedulerSettings,
}

impl EventBridgeFires {
    pub fn new(sdk: &aws_config::SdkConfig, settings: SchedulerSettings) -> Self {
        EventBridgeFires {
            client: Client::new(sdk),
            settings,
        }
    }

    /// The fire message, as the executor reads it
    /// (`work::Message::Fire`), with the time filled in by the scheduler.
    fn input(schedule_id: &str) -> String {
        serde_json::json!({
            "schedule_id": schedule_id,
            "scheduled_time": "<aws.scheduler.scheduled-time>",
        })
        .to_string()
    }

    fn parts(&self, spec: &FireSpec) -> StoreResult<(FlexibleTimeWindow, Target, ScheduleState)> {
        let invalid = |e: aws_sdk_scheduler::error::BuildError| StoreError::Invalid(e.to_string());
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(invalid)?;
        let target = Target::builder()
            .arn(&self.settings.queue_arn)
            .role_arn(&self.settings.role_arn)
            .input(Self::input(&spec.schedule_id))
            .build()
            .map_err(invalid)?;
        let state = if spec.enabled {
            ScheduleState::Enabled
        } else {
            ScheduleState::Disabled
        };
        Ok((window, target, state))
    }
}

#[async_trait]
impl FireSource for EventBridgeFires {
    async fn put(&self, spec: &FireSpec) -> StoreResult<()> {
        let (window, target, state) = self.parts(spec)?;
        let created = self
            .client
            .create_schedule()
            .name(&spec.schedule_id)
            .group_name(&self.settings.group)
            .schedule_expression(&spec.expression)
            .schedule_expression_timezone(&spec.timezone)
            .flexible_time_window(window.clone())
            .target(target.clone())
            .state(state.clone())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                self.client
                    .update_schedule()
                    .name(&spec.schedule_id)
                    .group_name(&self.settings.group)
                    .schedule_expression(&spec.expression)
                    .schedule_expression_timezone(&spec.timezone)
                    .flexible_time_window(window)
                    .target(target)
                    .state(state)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(backend)
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn remove(&self, schedule_id: &str) -> StoreResult<()> {
        match self
            .client
            .delete_schedule()
            .name(schedule_id)
            .group_name(&self.settings.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(backend(e)),
        }
    }

    fn is_external(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fire_message_is_the_one_the_executor_reads() {
        let input = EventBridgeFires::input("sch_1");
        let with_time = input.replace("<aws.scheduler.scheduled-time>", "2026-12-07T09:00:00Z");
        let msg = crate::work::Message::decode(crate::ports::QueueId::Runs, &with_time).unwrap();
        assert!(matches!(msg, crate::work::Message::Fire { .. }), "{msg:?}");
    }
}
