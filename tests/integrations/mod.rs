//! The integrations, each behind its feature, and tasks.
//!
//! - `tasks`: `crashbox::future::FutureExt::bind_scope` under tokio's
//!   multi-threaded runtime.
//! - `anyhow`, `eyre`: `capture` and `ResultExt::report` for their error
//!   types, each context layer an exception.
//! - `log`: `crashbox::log::Logger`, error records as reports, lower ones as
//!   breadcrumbs.
//! - `tracing`: `crashbox::tracing`, the layer that turns tracing events into
//!   reports and breadcrumbs.
#[cfg(feature = "anyhow")]
mod anyhow;
#[cfg(feature = "eyre")]
mod eyre;
#[cfg(feature = "log")]
mod log;
mod tasks;
#[cfg(feature = "tracing")]
mod tracing;

/// The tests `anyhow` and `eyre` share, in the module that invokes it:
/// `$krate` is the wrapper crate (with its context trait imported), `$report`
/// its error type, `$wrap` its context method and `$name` what crashbox
/// names the layers the wrapper makes.
macro_rules! wrapper_tests {
    ($krate:ident, $report:ty, $wrap:ident, $name:literal) => {
        /// An application error with a `Debug` named after its type.
        #[derive(Debug)]
        struct QuotaExceeded {
            used: u32,
        }

        impl fmt::Display for QuotaExceeded {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "quota exceeded ({} used)", self.used)
            }
        }

        impl std::error::Error for QuotaExceeded {}

        fn reports_of<R>(f: impl FnOnce() -> R) -> Vec<Report> {
            let _turn = without_client();
            testing::capture(f).1
        }

        fn upload() -> $krate::Result<()> {
            let read = std::fs::read("/no/such/file").$wrap("reading the upload");
            let _ = read.$wrap("handling request r-7")?;
            Ok(())
        }

        #[test]
        fn each_context_layer_is_an_exception_outer_first() {
            let mut line = 0;
            let reports = reports_of(|| {
                // In a macro, both say the line that invoked it.
                line = line!();
                upload().report()
            });
            assert_eq!(reports.len(), 1, "{reports:#?}");
            let report = &reports[0];
            assert_eq!(report.kind, Kind::Error);
            assert_eq!(report.level, Level::Error);
            assert_eq!(report.message, "handling request r-7");
            assert_eq!(report.exception_types(), [$name, $name, "std::io::Error"]);
            assert_eq!(report.exceptions[1].message, "reading the upload");
            // The report site is the location.
            let location = report.location.as_ref().expect("a location");
            assert_eq!(location.file, file!());
            assert_eq!(location.line, line);
        }

        #[test]
        fn a_wrapped_application_error_keeps_its_type_name_and_a_message_is_named_by_the_wrapper() {
            let reports = reports_of(|| {
                let quota = <$report>::new(QuotaExceeded { used: 12 });
                crashbox::$krate::capture(&quota);
                crashbox::$krate::capture(&$krate::$krate!("no route to {}", "db-1"));
            });
            assert_eq!(reports.len(), 2, "{reports:#?}");
            assert_eq!(reports[0].exception_types(), ["QuotaExceeded"]);
            assert_eq!(reports[0].message, "quota exceeded (12 used)");
            assert_eq!(reports[1].exception_types(), [$name]);
            assert_eq!(reports[1].message, "no route to db-1");
        }

        #[inline(never)]
        fn create_the_error() -> $report {
            std::hint::black_box($krate::$krate!("created deep down"))
        }

        #[test]
        fn with_a_captured_backtrace_the_frames_are_the_origin_and_the_location_the_report_site() {
            // The wrapper decides once per process whether to capture backtraces:
            // the child starts with the variable set.
            let out = run_child(
                &child!(child_report_an_error_with_its_origin),
                &[("RUST_LIB_BACKTRACE", "1".into())],
            );
            out.assert_success();
        }

        /// Run by `with_a_captured_backtrace_the_frames_are_the_origin_and_the_location_the_report_site`.
        #[test]
        #[ignore = "child process of `with_a_captured_backtrace_the_frames_are_the_origin_and_the_location_the_report_site`"]
        fn child_report_an_error_with_its_origin() {
            assert_child();
            let err = create_the_error();
            let mut line = 0;
            let reports = reports_of(|| {
                // In a macro, both say the line that invoked it.
                line = line!();
                crashbox::$krate::capture(&err)
            });
            let report = &reports[0];
            let top = report.frames[0].function.as_deref().unwrap_or("");
            assert!(
                top.contains("create_the_error"),
                "frames[0] should be where the error was created, got {top}\n{:#?}",
                report.frames
            );
            assert!(report.frames[0].in_app, "{:#?}", report.frames[0]);
            assert!(report.frames[0]
                .file
                .as_deref()
                .is_some_and(|f| f.contains("tests/integrations/")));
            assert!(
                report
                    .frames
                    .iter()
                    .all(|f| !f.function.as_deref().unwrap_or("").starts_with(concat!(stringify!($krate), "::"))),
                "{:#?}",
                report.frames
            );
            assert_eq!(report.location.as_ref().map(|l| l.line), Some(line));
        }

        #[test]
        fn an_ok_result_reports_nothing() {
            let reports = reports_of(|| $krate::Result::<u8>::Ok(1).report());
            assert!(reports.is_empty(), "{reports:#?}");
        }
    };
}
#[cfg(any(feature = "anyhow", feature = "eyre"))]
use wrapper_tests;
