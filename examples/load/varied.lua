-- wrk script: AuthZEN evaluations that differ from one another, as real traffic does: many
-- principals (the shipped pack's five agents and 2 000 workers it has never heard of), every
-- action the pack names, resources of every type (known ones and 5 000 payroll records it does
-- not hold), tasks and destinations; each resource with an action the schema lets on it, and
-- one request in 16 with any action (a schema error, answered with a deny). A request counter
-- in the claimed task id makes every body distinct by default, so the decision memo never
-- answers (hit rate 0%).
--
--   wrk -t1 -c16 -d10s --latency -s examples/load/varied.lua http://127.0.0.1:8181/access/v1/evaluation
--   wrk ... -s examples/load/varied.lua http://127.0.0.1:8181/access/v1/evaluation -- 4096
--
-- With an argument N the counter runs modulo N: the server sees N distinct bodies over and over,
-- and after the first N requests (per wrk thread) the memo can answer every one (the summary
-- prints the share of requests that repeat an earlier body, an upper bound of the memo's hits).
-- The summary also counts allows, denies and non-200 answers.

local agents = {
  "spiffe://acme.example/agent/payroll", "spiffe://acme.example/agent/browser",
  "spiffe://acme.example/agent/broker", "spiffe://acme.example/agent/ci",
  "spiffe://acme.example/agent/oncall",
}
local actions = { "read", "send", "invoke", "deploy", "delegate", "open_task", "end_task", "break_glass" }
-- Resources, each with the actions the schema lets on its type.
local data_actions = { "read", "write", "send", "break_glass" }
local known = {
  { "PayrollRecord", "run-42/emp-7", data_actions }, { "PayrollRecord", "run-43/emp-7", data_actions },
  { "Dataset", "sales-summary", data_actions }, { "Dataset", "customer-pii", data_actions },
  { "Tool", "web-search", { "invoke" } }, { "Tool", "browser", { "invoke" } },
  { "Tool", "payroll-db", { "invoke", "break_glass" } },
  { "Environment", "staging", { "deploy" } }, { "Environment", "production", { "deploy", "break_glass" } },
  { "Agent", "spiffe://acme.example/agent/payroll", { "delegate", "cut_off", "restore" } },
  { "Task", "run-42", { "open_task", "end_task" } },
}
local destinations = { "warehouse.internal", "mail.example.com", "", "s3://exports" }

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local modulo = nil
local counter = 0
sent, repeats, allows, denies, errors = 0, 0, 0, 0, 0

function init(args)
  if args[1] then modulo = tonumber(args[1]) end
  -- A different sequence per wrk thread.
  counter = math.random(0, 1000000) * 1000
end

-- A small deterministic mixer, so body k is always the same body.
local function pick(list, k, salt)
  return list[((k * 2654435761 + salt * 40503) % 4294967296) % #list + 1]
end

local function body(k)
  local agent
  if k % 3 == 0 then
    agent = "spiffe://acme.example/agent/worker-" .. (k % 2000)
  else
    agent = pick(agents, k, 1)
  end
  local path = agent:match("spiffe://[^/]+(/.*)")
  local rtype, rid, allowed
  if k % 4 == 0 then
    rtype, rid, allowed = "PayrollRecord", "run-" .. (k % 50) .. "/emp-" .. (k % 100), data_actions
  else
    local r = pick(known, k, 2)
    rtype, rid, allowed = r[1], r[2], r[3]
  end
  local action = pick(allowed, k, 4)
  if k % 16 == 5 then action = pick(actions, k, 4) end
  local dest = pick(destinations, k, 3)
  local claimed_dest = ""
  if dest ~= "" then claimed_dest = ',"destination":"' .. dest .. '"' end
  return '{"subject":{"type":"Agent","id":"' .. agent .. '","properties":{"trust_domain":"acme.example","path":"' .. path .. '"}},'
    .. '"action":{"name":"' .. action .. '"},'
    .. '"resource":{"type":"' .. rtype .. '","id":"' .. rid .. '"},'
    .. '"context":{"task_id":"run-' .. (k % 50) .. '-' .. k .. '"' .. claimed_dest .. '}}'
end

request = function()
  counter = counter + 1
  sent = sent + 1
  local k = counter
  if modulo then
    k = counter % modulo
    if sent > modulo then repeats = repeats + 1 end
  end
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body(k))
end

response = function(status, headers, b)
  if status ~= 200 then
    errors = errors + 1
  elseif b:find('"decision":true', 1, true) then
    allows = allows + 1
  else
    denies = denies + 1
  end
end

done = function(summary, latency, requests)
  -- Each wrk thread has its own Lua state: gather their counters.
  local t = { sent = 0, repeats = 0, allows = 0, denies = 0, errors = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(t) do t[name] = t[name] + (thread:get(name) or 0) end
  end
  io.write(string.format("non-200 responses: %d; allows %d, denies %d\n", t.errors, t.allows, t.denies))
  if modulo then
    io.write(string.format("requests repeating an earlier body: %.1f%% (the memo's hit rate at most)\n",
      100 * t.repeats / math.max(t.sent, 1)))
  else
    io.write("every body distinct: decision memo hit rate 0%\n")
  end
end
