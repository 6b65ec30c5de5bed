# Writes and reads Solid Cable's table through ActiveRecord, as the gem's
# model does (rails/solid_cable app/models/solid_cable/message.rb:
# broadcast, channel_hash_for, the broadcastable scope). The gem needs
# Rails 7.2+, which Debian does not package; Debian's ActiveRecord 6.1
# quotes and type-casts the same columns the same way (insert_all with the
# columns' types, quoted_date for the time, binary literals for the blobs).
#
#   ruby message.rb CONFIG_JSON broadcast CHANNEL PAYLOAD
#   ruby message.rb CONFIG_JSON read CHANNEL    # one JSON line per row
require "active_record"
require "digest"
require "json"

config_json, mode, channel, payload = ARGV
ActiveRecord::Base.default_timezone = :utc
ActiveRecord::Base.establish_connection(JSON.parse(config_json))

class Message < ActiveRecord::Base
  self.table_name = "solid_cable_messages"

  scope :broadcastable, lambda { |channels, last_id|
    where(channel_hash: channel_hashes_for(channels)).
      where(id: (last_id.to_i + 1)..).order(:id)
  }

  class << self
    def broadcast(channel, payload)
      insert({ created_at: Time.now, channel: channel, payload: payload,
        channel_hash: channel_hash_for(channel) })
    end

    def channel_hashes_for(channels)
      channels.map { |channel| channel_hash_for(channel) }
    end

    def channel_hash_for(channel)
      Digest::SHA256.digest(channel.to_s).unpack1("q>")
    end
  end
end

case mode
when "broadcast"
  Message.broadcast(channel, payload)
when "read"
  Message.broadcastable([channel], 0).each do |m|
    puts JSON.generate("id" => m.id, "channel" => m.channel, "payload" => m.payload,
      "channel_hash" => m.channel_hash, "created_at" => m.created_at.utc.strftime("%Y-%m-%d %H:%M:%S.%6N"))
  end
else
  abort "usage: message.rb CONFIG_JSON broadcast|read CHANNEL [PAYLOAD]"
end
