//! AWS errors as tik shows them: the API's code and message.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use tik_engine::provider::ProviderError;

pub fn api_error<E, R>(what: &str, e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            ProviderError {
                code: Some(err.code().unwrap_or("Unknown").to_string()),
                message: format!("{what}: {}", err.message().unwrap_or("no message")),
            }
        }
        other => ProviderError {
            code: None,
            message: format!(
                "{what}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&other)
            ),
        },
    }
}

/// The code of an error, where the API gave one.
pub fn code_of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// A delete's answer: done, or already gone (`...NotFound`, `NoSuch...`), which is as good.
pub fn gone_ok<T, E, R>(
    what: &str,
    r: Result<T, SdkError<E, R>>,
) -> Result<tik_engine::value::Map, ProviderError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match r {
        Ok(_) => Ok(tik_engine::value::Map::new()),
        Err(e)
            if code_of(&e).is_some_and(|c| c.contains("NotFound") || c.starts_with("NoSuch")) =>
        {
            Ok(tik_engine::value::Map::new())
        }
        Err(e) => Err(api_error(what, e)),
    }
}
