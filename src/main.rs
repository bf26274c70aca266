use clap::Parser;
use delivery_api::config::{Cli, Command, LogFormat};
use delivery_api::{cli, startup::Application, telemetry};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let args = Cli::parse();
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

async fn serve_until_stopped(args: delivery_api::config::ServeArgs) -> anyhow::Result<()> {
    let app = Application::build(args).await?;
    app.announce_ready()?;
    app.run_until_stopped().await?;
    Ok(())
}
