package guard

// Finding types reported by the DLP guard (gateway.Finding.Type,
// context.finding_types). Policies name them in the mask obligation.
const (
	// Personal data (ClassPII).
	TypeEmail       = "email"
	TypePhone       = "phone"
	TypeSSN         = "ssn"
	TypePaymentCard = "payment_card"
	TypeIBAN        = "iban"
	TypeIPv4        = "ipv4"
	TypeIPv6        = "ipv6"

	// Secrets (ClassSecret).
	TypeAWSAccessKey      = "aws_access_key"
	TypeAWSSecretKey      = "aws_secret_key"
	TypeGCPAPIKey         = "gcp_api_key"
	TypeGCPClientSecret   = "gcp_client_secret"
	TypeAzureKey          = "azure_key"
	TypeAzureClientSecret = "azure_client_secret"
	TypeGitHubToken       = "github_token"
	TypeGitLabToken       = "gitlab_token"
	TypeSlackToken        = "slack_token"
	TypeStripeKey         = "stripe_key"
	TypeOpenAIKey         = "openai_key"
	TypeAnthropicKey      = "anthropic_key"
	TypeAPIKey            = "api_key" // a high-entropy value named by a key, secret or token keyword
	TypePassword          = "password"
	TypeBearerToken       = "bearer_token"
	TypeBasicAuth         = "basic_auth"
	TypeJWT               = "jwt"
	TypePrivateKey        = "private_key"
)
