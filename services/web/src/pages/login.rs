//! The login page (the only page shown without a session).
use super::esc;

pub fn login(form_token: &str, message: Option<&str>, no_password: bool) -> String {
    let note = if no_password {
        "<p class=\"warn\">No admin password is set. On the appliance, run <code>sbactl admin passwd</code>.</p>".to_string()
    } else {
        message.map(|m| format!("<p class=\"bad\" id=\"login-error\">{}</p>", esc(m))).unwrap_or_default()
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Log in · Holdfast</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
         <body class=\"login\"><main><h1>Holdfast</h1><p>Branch appliance administration</p>{note}\
         <form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"form\" value=\"{}\">\
         <label>User <input name=\"user\" value=\"admin\" readonly></label>\
         <label>Password <input type=\"password\" name=\"password\" id=\"password\" autofocus autocomplete=\"current-password\"></label>\
         <button type=\"submit\" id=\"login\">Log in</button></form></main></body></html>\n",
        esc(form_token)
    )
}
