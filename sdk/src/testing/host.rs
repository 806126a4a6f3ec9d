//! [`TestHost`] as the node's [`Host`]: every call checks the grant, then
//! answers from the test doubles and records what the node did.

use super::{Event, TestHost};
use crate::{
    Capability, Column, Completion, CompletionRequest, Error, EventKind, Host, Level, Rows, Scope,
    Tool, ToolResult, Value,
};

impl TestHost {
    /// `Ok` if `capability` is granted, else record the denial.
    fn check(&self, capability: Capability) -> Result<(), Error> {
        if self.grants.contains(&capability) {
            Ok(())
        } else {
            self.records.borrow_mut().denied.push(capability);
            Err(Error::Denied(capability))
        }
    }
}

impl Host for TestHost {
    fn llm_complete(&self, request: &CompletionRequest) -> Result<Completion, Error> {
        self.check(Capability::Llm)?;
        self.llm.borrow_mut().complete(request)
    }

    fn db_list_tables(&self) -> Result<Vec<String>, Error> {
        self.check(Capability::Db)?;
        Ok(self.db.borrow().list_tables())
    }

    fn db_describe(&self, table: &str) -> Result<Vec<Column>, Error> {
        self.check(Capability::Db)?;
        self.db.borrow().describe(table)
    }

    fn db_query(&self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        self.check(Capability::Db)?;
        self.db.borrow_mut().query(sql, params)
    }

    fn memory_get(&self, scope: Scope, key: &str) -> Result<Option<String>, Error> {
        self.check(Capability::Memory)?;
        Ok(self.memory(scope, key))
    }

    fn memory_set(&self, scope: Scope, key: &str, value: &str) -> Result<(), Error> {
        self.check(Capability::Memory)?;
        self.memory
            .borrow_mut()
            .insert((scope, key.to_owned()), value.to_owned());
        Ok(())
    }

    fn memory_delete(&self, scope: Scope, key: &str) -> Result<(), Error> {
        self.check(Capability::Memory)?;
        self.memory.borrow_mut().remove(&(scope, key.to_owned()));
        Ok(())
    }

    fn store_get(&self, namespace: &str, key: &str) -> Result<Option<String>, Error> {
        self.check(Capability::Store)?;
        Ok(self.store(namespace, key))
    }

    fn store_set(&self, namespace: &str, key: &str, value: &str) -> Result<(), Error> {
        self.check(Capability::Store)?;
        self.kv
            .borrow_mut()
            .insert((namespace.to_owned(), key.to_owned()), value.to_owned());
        Ok(())
    }

    fn store_delete(&self, namespace: &str, key: &str) -> Result<(), Error> {
        self.check(Capability::Store)?;
        self.kv
            .borrow_mut()
            .remove(&(namespace.to_owned(), key.to_owned()));
        Ok(())
    }

    fn store_list(
        &self,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        self.check(Capability::Store)?;
        Ok(self
            .kv
            .borrow()
            .keys()
            .filter(|(ns, k)| ns == namespace && k.starts_with(prefix))
            .filter(|(_, k)| after.is_none_or(|a| k.as_str() > a))
            .take(limit as usize)
            .map(|(_, k)| k.clone())
            .collect())
    }

    fn tools_list(&self) -> Result<Vec<Tool>, Error> {
        self.check(Capability::Tools)?;
        Ok(self
            .tools
            .borrow()
            .values()
            .map(|(t, _)| t.clone())
            .collect())
    }

    fn tools_call(&self, server: &str, name: &str, arguments: &str) -> Result<ToolResult, Error> {
        self.check(Capability::Tools)?;
        let arguments: serde_json::Value = serde_json::from_str(arguments)
            .map_err(|e| Error::InvalidInput(format!("a tool's arguments are not JSON: {e}")))?;
        if !arguments.is_object() {
            return Err(Error::InvalidInput(
                "a tool's arguments are a JSON object".to_owned(),
            ));
        }
        self.records
            .borrow_mut()
            .tool_calls
            .push((server.to_owned(), name.to_owned(), arguments));
        match self
            .tools
            .borrow()
            .get(&(server.to_owned(), name.to_owned()))
        {
            Some((_, answer)) => Ok(answer.clone()),
            None => Err(Error::Denied(Capability::Tools)),
        }
    }

    fn hud_progress(&self, text: &str) -> Result<(), Error> {
        self.check(Capability::Hud)?;
        self.records.borrow_mut().progress.push(text.to_owned());
        Ok(())
    }

    fn hud_emit(&self, kind: EventKind, data: &str) -> Result<(), Error> {
        self.check(Capability::Hud)?;
        let data = serde_json::from_str(data)
            .map_err(|error| Error::InvalidInput(format!("event data is not JSON: {error}")))?;
        self.records.borrow_mut().events.push(Event { kind, data });
        Ok(())
    }

    fn log(&self, level: Level, message: &str) -> Result<(), Error> {
        self.check(Capability::Log)?;
        self.records
            .borrow_mut()
            .logs
            .push((level, message.to_owned()));
        Ok(())
    }
}
