//! `crashbox::future::FutureExt::bind_scope` under tokio's multi-threaded
//! runtime: many concurrent tasks, each with its own user and tags, moved
//! between threads at every `.await`.
use std::time::Duration;

use crashbox::future::FutureExt;
use crashbox::{testing, Level, User};

use crate::util::without_client;

const TASKS: usize = 64;
const STEPS: usize = 4;

#[test]
fn no_report_carries_another_tasks_user_tags_or_scope_changes() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let handles: Vec<_> = (0..TASKS)
                .map(|task| {
                    let work = async move {
                        for step in 0..STEPS {
                            // Other tasks run (and move threads) here.
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            tokio::task::yield_now().await;
                            crashbox::configure_scope(|scope| scope.set_extra("step_of", task));
                            crashbox::capture_message(format!("{task} {step}"), Level::Info);
                        }
                    };
                    let bound = crashbox::with_scope(
                        |scope| {
                            scope.set_user(Some(User::with_id(task.to_string())));
                            scope.set_tag("task", task.to_string());
                        },
                        || work.bind_scope(),
                    );
                    tokio::spawn(bound)
                })
                .collect();
            for handle in handles {
                handle.await.expect("the task ran");
            }
        });
    });
    assert_eq!(
        reports.len(),
        TASKS * STEPS,
        "every capture reached the test"
    );
    for report in &reports {
        let task = report.message.split(' ').next().expect("the task number");
        let user = report.user.as_ref().and_then(|u| u.id.as_deref());
        assert_eq!(user, Some(task), "{report:#?}");
        assert_eq!(report.tag("task"), Some(task), "{report:#?}");
        assert_eq!(
            report.extra["step_of"].to_string(),
            task,
            "a configure_scope of another task: {report:#?}"
        );
    }
}

#[test]
fn a_future_bound_after_with_scope_returned_does_not_get_its_layer() {
    // The layer ends with `with_scope`'s closure: bind inside it.
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        let task = crashbox::with_scope(
            |scope| scope.set_tag("request", "r-1"),
            || async {
                crashbox::capture_message("after", Level::Info);
            },
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(crashbox::future::FutureExt::bind_scope(task));
    });
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].tag("request"), None);
}
