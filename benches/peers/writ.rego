# The shipped pack's data, payroll and tool policies (policies/data.cedar, payroll.cedar,
# tools.cedar) written in Rego, for regorus to run beside Writ in the same benchmark. The
# entities (roles, tool lists, resource attributes) come in as `data`, built from
# policies/entities.json; the benchmark checks both engines agree on every request first.
package writ

default allow := false

agent := data.agents[input.principal]

res := data.resources[input.resource]

# payroll-read-in-task: inside an open task (Writ's record, `context.task`) that lists the agent
payroll_read_in_task if {
	input.action in {"read", "send"}
	"payroll-agent" in agent.roles
	res.type == "PayrollRecord"
	input.principal in input.context.task.members
	res.task == input.context.task.id
}

# analyst-internal-data
analyst_internal_data if {
	input.action in {"read", "send"}
	"analyst" in agent.roles
	res.type == "Dataset"
	res.sensitivity <= 1
}

# tool-allow-list
tool_allow_list if {
	input.action == "invoke"
	res.type == "Tool"
	input.resource in agent.tools
}

# ci-deploy-non-production
ci_deploy_non_production if {
	input.action == "deploy"
	"ci-deployer" in agent.roles
	res.type == "Environment"
	res.sensitivity <= 1
	input.context.identity_expires_at > input.context.now + 300
}

# no-high-sensitivity-external (a forbid: it overrides every permit): sensitive data is sent only
# to destinations listed as internal; none named counts as external
low_sensitivity if res.sensitivity <= 1

internal_destination if input.context.claimed.destination in data.internal

no_high_sensitivity_external if {
	input.action == "send"
	not low_sensitivity
	not internal_destination
}

permitted if payroll_read_in_task

permitted if analyst_internal_data

permitted if tool_allow_list

permitted if ci_deploy_non_production

allow if {
	permitted
	not no_high_sensitivity_external
}
