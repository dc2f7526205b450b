-- wrk script: POST one AuthZEN evaluation (the shipped pack's payroll read) per request.
-- wrk -t2 -c64 -d20s --latency -s examples/load/evaluation.lua http://127.0.0.1:8181/access/v1/evaluation
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"subject":{"type":"Agent","id":"spiffe://acme.example/agent/payroll","properties":{"trust_domain":"acme.example","path":"/agent/payroll"}},"action":{"name":"read"},"resource":{"type":"PayrollRecord","id":"run-42/emp-7"},"context":{"task_id":"run-42","now":1800000000,"delegation_depth":0,"identity_expires_at":1800003600}}]]

-- wrk counts non-2xx answers itself (each wrk thread has its own Lua state, so a counter kept
-- in this script would not reach done()).
done = function(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
