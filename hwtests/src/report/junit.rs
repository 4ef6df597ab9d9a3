//! JUnit XML through `quick-junit` (the writer nextest uses), in the dialect GitHub Actions
//! reporters, GitLab and Jenkins read: `testsuites` > `testsuite` > `testcase` with `failure` /
//! `skipped` children and `time` in seconds; quick-junit escapes the text, drops what XML 1.0
//! forbids, and counts tests, failures and skips per suite and in total.
//!
//! A failure's first line is its `message`, all its lines the element's text; notes of a case
//! go to its `system-out`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{suites, Case, Outcome};

fn total_time<'a>(cases: impl IntoIterator<Item = &'a Case>) -> Duration {
    cases.into_iter().map(|case| case.duration).sum()
}

fn test_case(suite: &str, case: &Case) -> TestCase {
    let status = match &case.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Fail(_) => {
            let lines = case.outcome.failure_lines();
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(lines[0])
                .set_type("failure")
                .set_description(lines.join("\n"));
            status
        }
        Outcome::Skip(reason) => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(reason.as_str());
            status
        }
    };
    let mut test_case = TestCase::new(case.name.as_str(), status);
    test_case.set_classname(suite).set_time(case.duration);
    if !case.notes.is_empty() {
        test_case.set_system_out(case.notes.join("\n"));
    }
    test_case
}

/// The JUnit document for `cases`, `run_name` naming the root `testsuites`.
pub fn junit(run_name: &str, cases: &[Case]) -> String {
    let mut report = Report::new(run_name);
    report.set_time(total_time(cases));
    for (suite, members) in suites(cases) {
        let mut test_suite = TestSuite::new(suite);
        test_suite.set_time(total_time(members.iter().copied()));
        test_suite.add_test_cases(members.iter().map(|case| test_case(suite, case)));
        report.add_test_suite(test_suite);
    }
    report
        .to_string()
        .expect("serialising a report into memory cannot fail")
}
