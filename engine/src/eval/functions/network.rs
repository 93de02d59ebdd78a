//! Networks: cidrsubnet.

use super::*;

pub(super) fn call(_ev: &mut Evaluator<'_>, name: &str, args: Vec<Value>) -> R {
    match name {
        "cidrsubnet" => {
            arity(&args, 3)?;
            cidrsubnet(
                &string(&args[0], "the prefix")?,
                number(&args[1], "newbits")?,
                number(&args[2], "netnum")?,
            )
            .map(Value::String)
        }
        other => Err(format!("unknown function {other}")),
    }
}

pub fn cidrsubnet(prefix: &str, newbits: f64, netnum: f64) -> Result<String, String> {
    let (addr, len) = prefix
        .split_once('/')
        .ok_or_else(|| format!("\"{prefix}\" is not a CIDR prefix"))?;
    let len: u32 = len
        .parse()
        .map_err(|_| format!("\"{prefix}\" has a bad prefix length"))?;
    if newbits < 0.0 || newbits.fract() != 0.0 || netnum < 0.0 || netnum.fract() != 0.0 {
        return Err("newbits and netnum must be whole numbers that are not negative".into());
    }
    let (newbits, netnum) = (newbits as u32, netnum as u128);
    let (bits, base): (u32, u128) = if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        (32, u32::from(v4) as u128)
    } else if let Ok(v6) = addr.parse::<Ipv6Addr>() {
        (128, u128::from(v6))
    } else {
        return Err(format!("\"{addr}\" is not an IP address"));
    };
    let new_len = len.saturating_add(newbits);
    if len > bits || new_len > bits {
        return Err(format!(
            "cannot extend a /{len} prefix by {newbits} bits: the address has {bits}"
        ));
    }
    if newbits < 128 && netnum >= (1u128 << newbits) {
        return Err(format!("netnum {netnum} does not fit in {newbits} bits"));
    }
    let host_bits = bits - new_len;
    let mask: u128 = if len == 0 {
        0
    } else {
        (!0u128 >> (128 - bits)) & !((1u128 << (bits - len)) - 1)
    };
    let network = (base & mask) | netnum.checked_shl(host_bits).unwrap_or(0);
    Ok(if bits == 32 {
        format!("{}/{new_len}", Ipv4Addr::from(network as u32))
    } else {
        format!("{}/{new_len}", Ipv6Addr::from(network))
    })
}
