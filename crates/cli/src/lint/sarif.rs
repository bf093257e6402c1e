//! `--format sarif`: SARIF 2.1.0 for code-scanning UIs. Rules carry their metadata; results map
//! HIGH to `error`, MEDIUM to `warning`, LOW to `note`; acknowledged findings carry an in-source
//! suppression with its justification.

use serde_json::{Value, json};

use safeshift_lint::{LintReport, Risk, Severity};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(risk: Risk) -> &'static str {
    match risk {
        Risk::High => "error",
        Risk::Medium => "warning",
        Risk::Low => "note",
    }
}

pub fn render(report: &LintReport) -> String {
    let rules = safeshift_lint::rules();
    let descriptors: Vec<Value> = rules
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id,
                "name": rule.id,
                "shortDescription": { "text": rule.title },
                "fullDescription": { "text": rule.why.trim() },
                "help": { "text": rule.explain(), "markdown": format!("{}\n\n```sql\n{}\n```", rule.help, rule.safe_alternative.trim()) },
                "defaultConfiguration": { "level": level(rule.risk) },
                "properties": { "risk": rule.risk, "lock": rule.lock, "tags": ["migration", "postgresql"] },
            })
        })
        .collect();
    let mut results = Vec::new();
    for file in &report.files {
        let uri = super::display_path(file);
        for finding in &file.findings {
            let (end_line, end_column) =
                super::end_position(file, &finding.span).unwrap_or((finding.line, finding.column));
            let mut text = finding.message.clone();
            text.push_str(". ");
            text.push_str(finding.help);
            let mut result = json!({
                "ruleId": finding.rule,
                "ruleIndex": rules.iter().position(|r| finding.rule == r.id),
                "level": level(finding.risk),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri },
                        "region": { "startLine": finding.line, "startColumn": finding.column, "endLine": end_line, "endColumn": end_column },
                    }
                }],
                "properties": { "risk": finding.risk, "lock": finding.lock, "tables": finding.tables, "rewrite": finding.rewrite, "safeAlternative": finding.safe_alternative },
            });
            if let Some(reason) = &finding.suppressed {
                result["suppressions"] = json!([{ "kind": "inSource", "justification": reason }]);
            }
            results.push(result);
        }
        for diagnostic in &file.diagnostics {
            results.push(json!({
                "ruleId": "safeshift-diagnostic",
                "level": if diagnostic.severity == Severity::Error { "error" } else { "warning" },
                "message": { "text": diagnostic.message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri },
                        "region": { "startLine": diagnostic.line, "startColumn": diagnostic.column },
                    }
                }],
            }));
        }
    }
    let sarif = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "safeshift",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/safeshift/safeshift",
                    "rules": descriptors,
                }
            },
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&sarif).unwrap_or_default()
}
