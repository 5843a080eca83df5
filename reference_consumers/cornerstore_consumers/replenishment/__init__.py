"""The replenishment and ordering consumer: forecast, recommend, and order once the shop agrees."""
