use clap::Parser;
use delivery_api::config::{Cli, Command, LogFormat};
use delivery_api::{cli, startup::Application, telemetry};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let args = match Cli::try_parse() {
        Ok(args) => args,
        // With --log-format json, stderr holds JSON objects only: a bad command line too.
        Err(e) if e.use_stderr() && json_wanted() => {
            telemetry::init_as(LogFormat::Json, "info");
            let reason = e.render().to_string();
            tracing::error!(error = reason.trim_end(), "invalid command line");
            return std::process::ExitCode::from(2); // as clap's own usage errors
        }
        Err(e) => e.exit(),
    };
    let log_format = match &args.command {
        Some(Command::Serve(serve)) => serve.operating.log_format,
        None => args.serve.operating.log_format,
        Some(_) => LogFormat::Text,
    };
    // The doctor's output is its report: its TLS client's own errors (an untrusted certificate)
    // are in the report, in words, and not again as a log line above it.
    let default_filter = match &args.command {
        Some(Command::Preflight(_)) => "warn,rustls_platform_verifier=off,rustls=off",
        _ => "info,sqlx=warn",
    };
    telemetry::init_as(log_format, default_filter);
    let result = match args.command {
        Some(Command::User(command)) => cli::user(command).await,
        Some(Command::Preflight(args)) => return cli::preflight(&args).await,
        Some(Command::CopyData(args)) => cli::copy_data(&args).await,
        Some(Command::Serve(serve)) => serve_until_stopped(serve).await,
        None => serve_until_stopped(args.serve).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // With --log-format json, stderr holds JSON objects only: the reason is one too.
            match log_format {
                LogFormat::Text => eprintln!("error: {e:#}"),
                LogFormat::Json => tracing::error!(error = format!("{e:#}"), "not serving"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--log-format json` (or its environment variable), read before the flags could be parsed.
fn json_wanted() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .any(|pair| pair[0] == "--log-format" && pair[1] == "json")
        || args.iter().any(|arg| arg == "--log-format=json")
        || std::env::var("DELIVERY_API_LOG_FORMAT").is_ok_and(|v| v == "json")
}

async fn serve_until_stopped(args: delivery_api::config::ServeArgs) -> anyhow::Result<()> {
    let app = Application::build(args).await?;
    app.announce_ready()?;
    app.run_until_stopped().await?;
    Ok(())
}
