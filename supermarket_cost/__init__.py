"""What this design costs on AWS per month, from figures measured on the moto-backed lake."""
