output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per availability zone."
  value       = [for subnet in aws_subnet.this : subnet.id]
}

output "worker_security_group_id" {
  description = "Security group for the worker tasks (HTTPS out to the endpoints only)."
  value       = aws_security_group.worker.id
}

output "endpoints_security_group_id" {
  description = "Security group of the interface VPC endpoints."
  value       = aws_security_group.endpoints.id
}

output "gateway_prefix_list_ids" {
  description = "Prefix list IDs of the gateway endpoints by service (s3, dynamodb), for security group egress rules."
  value       = { for name, endpoint in aws_vpc_endpoint.gateway : name => endpoint.prefix_list_id }
}

output "vpc_endpoint_ids" {
  description = "VPC endpoint IDs by service name (interface and gateway)."
  value       = merge({ for name, endpoint in aws_vpc_endpoint.interface : name => endpoint.id }, { for name, endpoint in aws_vpc_endpoint.gateway : name => endpoint.id })
}

output "network_kms_key_arn" {
  description = "ARN of the customer managed key that encrypts the flow logs."
  value       = aws_kms_key.this.arn
}

output "egress_mode" {
  description = "How the private subnets reach the internet: nat_gateway, transit_gateway or none (the console signs in with a token)."
  value       = var.egress.mode
}

output "nat_public_ips" {
  description = "Public IP of the NAT gateway (egress.mode nat_gateway), e.g. for an identity provider's allow list; [] otherwise."
  value       = aws_eip.this[*].public_ip
}
