use clap::Parser;
use delivery_api::config::{Cli, Command};
use delivery_api::{cli, startup::Application, telemetry};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let args = Cli::parse();
    telemetry::init("info,sqlx=warn");
    let result = match args.command {
        Some(Command::User(command)) => cli::user(command).await,
        Some(Command::Preflight(args)) => return cli::preflight(&args).await,
        Some(Command::Serve(serve)) => serve_until_stopped(serve).await,
        None => serve_until_stopped(args.serve).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
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
